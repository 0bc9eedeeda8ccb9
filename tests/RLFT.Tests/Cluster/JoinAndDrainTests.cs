using Akka.Actor;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Cluster;

/// <summary>Nodes that join a running job, and nodes that leave it politely.</summary>
public class JoinAndDrainTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_rollout_node_that_joins_mid_job_pulls_the_current_policy_and_takes_work()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(14)), extra: "max-policy-lag = 1");
        var (seedPort, seed) = JobHarness.NewSeed();
        var halfway = new TaskCompletionSource();
        await using var learner = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "reward"], Port = seedPort, SeedNodes = [seed], ExtraHocon = JobHarness.TestHocon,
            OnStatus = s => { if (s.StageKind == "Ppo" && s.Step >= 3) halfway.TrySetResult(); },
        }, new JobHarness.RecordingFactory());
        // The first rollout node works the first steps and then leaves, so the rest of the job waits for the
        // late joiner: the job can only complete if the late node joins, syncs and takes work.
        var early = JobHarness.RolloutNode(job, seed);
        await learner.StartAsync(ct);
        await early.StartAsync(ct);
        await halfway.Task.WaitAsync(TimeSpan.FromMinutes(2), ct);
        await early.DisposeAsync();

        var lateEngines = new JobHarness.RecordingFactory();
        await using var late = JobHarness.RolloutNode(job, seed, lateEngines);
        await late.StartAsync(ct);

        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(3), ct);
        Assert.True(finished.Succeeded, finished.Message);
        var status = await learner.Coordinator.Ask<JobStatus>(QueryJobStatus.Instance, TimeSpan.FromSeconds(10), ct);
        output.WriteLine($"per worker {string.Join(", ", status.BatchesPerWorker.Select(kv => $"{kv.Key}={kv.Value}"))}");
        Assert.Equal(14, status.BatchesTrained);
        Assert.Equal(2, status.BatchesPerWorker.Count);
        Assert.All(status.BatchesPerWorker.Values, n => Assert.True(n > 0));
        var replica = Assert.Single(lateEngines.Rollouts);
        Assert.True(replica.PolicyVersion > 3, $"the late node generated with policy v{replica.PolicyVersion}");
    }

    [Fact]
    public async Task A_rollout_node_that_leaves_gracefully_hands_back_its_work_and_the_job_completes()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(12)), extra: "max-policy-lag = 1");
        var (seedPort, seed) = JobHarness.NewSeed();
        var bothWorked = new TaskCompletionSource();
        await using var learner = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "reward"], Port = seedPort, SeedNodes = [seed], ExtraHocon = JobHarness.TestHocon,
            OnStatus = s => { if (s.BatchesPerWorker.Count == 2 && s.BatchesPerWorker.Values.All(n => n > 0)) bothWorked.TrySetResult(); },
        }, new JobHarness.RecordingFactory());
        await using var stays = JobHarness.RolloutNode(job, seed);
        var leaves = JobHarness.RolloutNode(job, seed);
        await learner.StartAsync(ct);
        await stays.StartAsync(ct);
        await leaves.StartAsync(ct);
        await bothWorked.Task.WaitAsync(TimeSpan.FromMinutes(2), ct);
        await leaves.DisposeAsync();   // coordinated shutdown: leave the cluster, stop the actors

        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(3), ct);
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(12, finished.Summary["job/batches_trained"]);
    }
}
