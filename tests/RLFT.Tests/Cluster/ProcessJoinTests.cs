using System.Diagnostics;
using Akka.Actor;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Cluster;

/// <summary>
/// Joining and leaving with real `rlft node` processes: a rollout process asked to stop (SIGTERM) mid-job
/// drains and leaves, and one started after that joins the running job, syncs the current policy and does
/// the rest of the work. The learner runs in the test process so the test can read the ledger.
/// </summary>
[Collection(ProcessTests.Name)]
public class ProcessJoinTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_rollout_process_stopped_mid_job_drains_and_one_started_later_joins_and_finishes_the_job()
    {
        string jobFile = JobHarness.JobFile(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(14)), "max-policy-lag = 1");
        var job = JobSpec.Load(jobFile);
        var (seedPort, seed) = JobHarness.NewSeed();
        var halfway = new TaskCompletionSource();
        await using var learner = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "reward"], Port = seedPort, SeedNodes = [seed],
            OnStatus = s => { if (s.StageKind == "Ppo" && s.Step >= 3) halfway.TrySetResult(); },
        }, new JobHarness.RecordingFactory());
        await learner.StartAsync(Ct);

        using var early = await ProcessKillTests.RolloutProcess.StartAsync(jobFile, seed);
        await halfway.Task.WaitAsync(TimeSpan.FromMinutes(2), Ct);
        using (var term = Process.Start("kill", ["-TERM", early.Process.Id.ToString()])) await term.WaitForExitAsync(Ct);
        await early.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);
        output.WriteLine($"--- early node (SIGTERM, exit {early.Process.ExitCode})\n{early.Log}");
        Assert.Contains("leaving the cluster", early.Log);
        var before = await learner.Coordinator.Ask<JobStatus>(QueryJobStatus.Instance, TimeSpan.FromSeconds(10), Ct);
        Assert.False(before.Finished, "the job finished before the late node could join");

        using var late = await ProcessKillTests.RolloutProcess.StartAsync(jobFile, seed);
        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(3), Ct);
        Assert.True(finished.Succeeded, finished.Message);
        var status = await learner.Coordinator.Ask<JobStatus>(QueryJobStatus.Instance, TimeSpan.FromSeconds(10), Ct);
        output.WriteLine($"per worker {string.Join(", ", status.BatchesPerWorker.Select(kv => $"{kv.Key}={kv.Value}"))}; re-issued {status.BatchesReissued}");
        Assert.Equal(14, status.BatchesTrained);
        Assert.True(status.BatchesPerWorker.GetValueOrDefault(early.WorkerId) > 0, "the early node did no work");
        Assert.True(status.BatchesPerWorker.GetValueOrDefault(late.WorkerId) > 0, "the late node did no work");
        Assert.Equal(14, status.BatchesPerWorker.Values.Sum());   // every batch completed exactly once
        await late.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        output.WriteLine($"--- late node\n{late.Log}");
        Assert.Contains("the job ended", late.Log);
    }
}
