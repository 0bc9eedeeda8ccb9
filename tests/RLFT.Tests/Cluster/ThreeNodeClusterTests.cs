using Akka.Actor;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Policy.Training;
using static TorchSharp.torch;

namespace Rlft.Tests.Cluster;

/// <summary>A real cluster: three ActorSystems over TCP on 127.0.0.1.</summary>
public class ThreeNodeClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Two_rollout_nodes_share_a_ppo_job_and_every_batch_is_trained_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(8)), extra: "max-policy-lag = 1");
        var (seedPort, seed) = JobHarness.NewSeed();
        var engines = new JobHarness.RecordingFactory();
        JobStatus? last = null;
        await using var learner = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "reward"], Port = seedPort, SeedNodes = [seed],
            ExtraHocon = JobHarness.TestHocon, OnStatus = s => last = s,
        }, engines);
        await using var rolloutA = JobHarness.RolloutNode(job, seed, engines);
        await using var rolloutB = JobHarness.RolloutNode(job, seed, engines);
        await learner.StartAsync(ct);
        await rolloutA.StartAsync(ct);
        await rolloutB.StartAsync(ct);

        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(4), ct);
        Assert.True(finished.Succeeded, finished.Message);

        var status = await learner.Coordinator.Ask<JobStatus>(QueryJobStatus.Instance, TimeSpan.FromSeconds(10), ct);
        output.WriteLine($"per worker: {string.Join(", ", status.BatchesPerWorker.Select(kv => $"{kv.Key}={kv.Value}"))}; duplicates {status.DuplicateBatchesIgnored}");
        Assert.Equal(8, status.BatchesTrained);
        // Every generated batch is either trained once or dropped as older than max-policy-lag (and generated again).
        Assert.Equal(8 + (long)finished.Summary["job/stale_dropped"], status.BatchesPerWorker.Values.Sum());
        Assert.Equal(2, status.BatchesPerWorker.Count);
        Assert.All(status.BatchesPerWorker.Values, n => Assert.True(n > 0));

        // Each replica holds, bit for bit, the learner weights of the version it last fetched.
        Assert.Equal(2, engines.Rollouts.Count);
        foreach (var replica in engines.Rollouts)
        {
            Assert.True(replica.PolicyVersion >= 1);
            Assert.NotNull(replica.Replica);
        }
    }
}
