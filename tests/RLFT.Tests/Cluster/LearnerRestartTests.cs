using System.Text.Json;
using Rlft.Actors.Jobs;
using Rlft.Tests.Cli;

namespace Rlft.Tests.Cluster;

/// <summary>
/// The learner process killed with SIGKILL mid-job and started again with --resume on the same address: the
/// rollout process that stayed up joins the new learner by itself (no restart: the same process works to the end) and the job
/// completes, ending on the weights of the same job run straight through in one process.
/// </summary>
[Collection(ProcessTests.Name)]
public class LearnerRestartTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    const string Akka = """
        akka.cluster {
          failure-detector.acceptable-heartbeat-pause = 3s
          split-brain-resolver { stable-after = 2s, down-all-when-unstable = off }
        }
        """;

    static string WriteJob() => JobHarness.JobFile(ResumeHarness.Stages, ResumeHarness.Extra, Akka);

    static string PolicyHash(string runDir) => ResumeHarness.Hash(Path.Combine(ResumeHarness.FinalCheckpoint(runDir), "policy", "model.safetensors"));

    [Fact]
    public async Task A_killed_learner_restarted_with_resume_gets_the_surviving_rollout_node_back_and_completes_the_job()
    {
        string straight = WriteJob();
        using (var p = await RlftProcess.StartAsync(["run", straight], "rlft: job", Ct))
        {
            await p.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(3), Ct);
            Assert.True(p.Process.ExitCode == 0, p.Log);
        }

        string jobFile = WriteJob();
        string runDir = JobSpec.Load(jobFile).RunDirectory;
        var (seedPort, seed) = JobHarness.NewSeed();
        string[] learnerArgs = ["node", "--config", jobFile, "--roles", "learner,reward", "--port", seedPort.ToString()];
        var first = await RlftProcess.StartAsync(learnerArgs, "up with roles", Ct);
        using var rollout = await RlftProcess.StartAsync(["node", "--config", jobFile, "--roles", "rollout", "--port", JobHarness.FreePort().ToString(), "--seed-nodes", seed], "up with roles", Ct);
        await ResumeHarness.WaitForMidStageCheckpoint(runDir, first);
        first.Kill();
        await first.Process.WaitForExitAsync(Ct);
        output.WriteLine($"--- first learner (killed)\n{first.Log}");
        first.Dispose();
        Assert.False(File.Exists(Path.Combine(runDir, "summary.json")), "the job finished before the learner was killed");

        using var second = await RlftProcess.StartAsync([.. learnerArgs, "--resume", runDir], "up with roles", Ct);
        await second.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(3), Ct);
        output.WriteLine($"--- second learner (--resume)\n{second.Log}");
        output.WriteLine($"--- rollout node\n{rollout.Log}");
        Assert.Equal(0, second.Process.ExitCode);

        // The rollout node is the process started before the kill: it joined the new learner by itself, worked
        // to the end, and left when the coordinator said the job ended.
        await rollout.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(0, rollout.Process.ExitCode);
        Assert.Contains("joining again", rollout.Log);
        Assert.Contains("the job ended", rollout.Log);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
        Assert.True(summary.RootElement.GetProperty("succeeded").GetBoolean());
        Assert.Equal(16, summary.RootElement.GetProperty("job/batches_trained").GetDouble());
        Assert.Equal(PolicyHash(JobSpec.Load(straight).RunDirectory), PolicyHash(runDir));
    }
}
