using Akka.Actor;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Cluster;

/// <summary>A rollout node vanishing mid-job (its actor system stopped without leaving the cluster).</summary>
public class NodeLossTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Should_reissue_work_when_a_rollout_node_dies_and_train_every_batch_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(12)), extra: "max-policy-lag = 1");
        var (seedPort, seed) = JobHarness.NewSeed();
        var victimWorked = new TaskCompletionSource();
        string abrupt = JobHarness.NodeLossHocon + "\nakka.coordinated-shutdown.run-by-actor-system-terminate = off";
        await using var learner = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "reward"], Port = seedPort, SeedNodes = [seed], ExtraHocon = JobHarness.NodeLossHocon,
            WorkTimeout = TimeSpan.FromSeconds(30),
            OnStatus = s => { if (s.BatchesPerWorker.Count == 2 && s.BatchesPerWorker.Values.All(n => n > 0)) victimWorked.TrySetResult(); },
        }, new JobHarness.RecordingFactory());
        await using var survivor = JobHarness.RolloutNode(job, seed, hocon: JobHarness.NodeLossHocon);
        var victim = JobHarness.RolloutNode(job, seed, hocon: abrupt);
        await learner.StartAsync(ct);
        await survivor.StartAsync(ct);
        await victim.StartAsync(ct);

        await victimWorked.Task.WaitAsync(TimeSpan.FromMinutes(2), ct);
        await victim.System.Terminate();   // no leave, no hand-over: the cluster must notice by itself

        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(3), ct);
        Assert.True(finished.Succeeded, finished.Message);
        var status = await learner.Coordinator.Ask<JobStatus>(QueryJobStatus.Instance, TimeSpan.FromSeconds(10), ct);
        output.WriteLine($"trained {status.BatchesTrained}, reissued {status.BatchesReissued}, duplicates ignored {status.DuplicateBatchesIgnored}, per worker {string.Join(", ", status.BatchesPerWorker.Select(kv => $"{kv.Key}={kv.Value}"))}");
        Assert.Equal(12, status.BatchesTrained);
        // Every generated batch is either trained once or dropped as older than max-policy-lag (and generated again).
        Assert.Equal(12 + (long)finished.Summary["job/stale_dropped"], status.BatchesPerWorker.Values.Sum());
    }
}
