// The TestKit's Expect* calls take an optional CancellationToken but end on their own timeouts (akka.test.single-expect-default).
#pragma warning disable xUnit1051

using Akka.Actor;
using Akka.Hosting;
using Akka.TestKit;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Actors.WeightSync;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Actors;

/// <summary>
/// Behaviour of each actor on its own, against test probes standing in for its peers, with every message
/// serialized (serialize-messages = on): ours through RlftSerializer, to which they are bound. The TestKit's own
/// messages (Identify, probe plumbing) carry no binding, so they need the fallback that strict mode removes;
/// strict mode itself is covered by SerializationTests. The engines are small fakes: the math behind them is
/// tested directly elsewhere.
/// </summary>
public abstract class ActorSpec(ITestOutputHelper output) : Akka.Hosting.TestKit.TestKit(output: output)
{
    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("""
            akka.actor.provider = local
            akka.actor.serialize-messages = on
            akka.actor.serialization-settings.allow-unregistered-types = on
            """).WithFallback(RlftConfig.BaseAkka().Config);
        builder.AddHocon(config, HoconAddMode.Prepend);
    }

    private protected static RolloutSample Sample(string completion) =>
        new("review the book:", null, 0, completion, [1, 2], [3, 4], [-0.5f, -0.25f], true);

    private protected static RolloutBatch Batch(long id, long version, string worker, int stage = 0) =>
        new(id, stage, version, worker, [Sample("great"), Sample("dull")], 0.01);

    private protected static ScoredBatch Scored(long id) => new(id, [1f, 0f], ["task"], [[1f, 0f]], [], [], 0.01);

    private protected sealed class FakeRollout(long version) : IRolloutEngine
    {
        public long PolicyVersion { get; private set; } = version;
        public long BaseVersion { get; private set; } = version;
        public List<(long Version, int Bytes)> Applied { get; } = new();
        public string? FailWith { get; set; }

        public void ApplyWeights(long v, byte[] blob) { Applied.Add((v, blob.Length)); PolicyVersion = BaseVersion = v; }

        public RolloutSample[] Generate(PromptItem[] prompts, SamplingSettings sampling, long seed) =>
            FailWith is { } reason ? throw new InvalidOperationException(reason) : prompts.Select(p => Sample($"v{PolicyVersion}")).ToArray();

        public void Dispose() { }
    }

    private protected sealed class FakeReward : IRewardEngine
    {
        public string? FailWith { get; set; }
        public long RewardModelVersion => -1;
        public bool NeedsRewardModel => false;
        public void ApplyRewardModel(long version, byte[] blob) { }

        public Task<ScoredBatch> ScoreAsync(RolloutBatch batch, CancellationToken cancellationToken) =>
            FailWith is { } reason ? Task.FromException<ScoredBatch>(new InvalidOperationException(reason))
                : Task.FromResult(new ScoredBatch(batch.BatchId, batch.Samples.Select(s => s.Completion == "great" ? 1f : 0f).ToArray(), ["task"], [[1f, 0f]], [], [], 0));

        public void Dispose() { }
    }

    private protected sealed class FakeLearner : ILearnerEngine
    {
        public long PolicyVersion { get; private set; }
        public long RewardModelVersion => -1;
        public bool ExportsAdapterOnly { get; set; }
        public long AdapterBaseVersion { get; set; } = -1;
        public string? FailWith { get; set; }
        public List<long> TrainedOn { get; } = new();

        public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken cancellationToken)
        {
            for (int i = 1; i <= stage.Steps; i++) progress(new StageProgress(stage.Index, i, stage.Steps, new() { ["loss/sft"] = 1.0 / i }));
            return new StageCompleted(stage.Index, ++PolicyVersion, -1, new() { ["sft/done"] = 1 });
        }

        public void BeginOnlineStage(StageSpec stage, bool resume = false) { }

        public PolicyUpdated Train(StageSpec stage, TrainOn experience)
        {
            if (FailWith is { } reason) throw new InvalidOperationException(reason);
            TrainedOn.Add(experience.BatchId);
            return new PolicyUpdated(experience.BatchId, stage.Index, 0, ++PolicyVersion, new() { ["reward/mean"] = experience.Scores.Scores.Average() });
        }

        public byte[] ExportWeights(WeightKind kind) => new byte[ExportsAdapterOnly ? 10 : 100];

        public EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts) => new(stage?.Index ?? -1, label, new() { ["eval/reward"] = 0.5 }, [], []);

        public void SaveCheckpoint(string directory) { }

        public void Dispose() { }
    }
}

public sealed class RolloutActorSpecs(ITestOutputHelper output) : ActorSpec(output)
{
    static GenerateRollouts Work(long id, long version) =>
        new(id, 0, version, [new PromptItem("review the book:", null, 0), new PromptItem("review the song:", null, 0)], new SamplingSettings(4, 1, 0, 1), 7);

    [Fact]
    public async Task Should_ask_for_work_on_start_and_answer_each_batch_with_its_policy_version()
    {
        var coordinator = CreateTestProbe();
        var engine = new FakeRollout(3);
        var rollout = Sys.ActorOf(RolloutActor.Props(engine, coordinator.Ref, "w1"));

        Assert.Equal(new RequestWork("w1", 3), await coordinator.ExpectMsgAsync<RequestWork>());
        rollout.Tell(Work(11, 3), coordinator.Ref);
        var batch = await coordinator.ExpectMsgAsync<RolloutBatch>();
        Assert.Equal((11L, 3L, "w1", 2), (batch.BatchId, batch.PolicyVersion, batch.WorkerId, batch.Samples.Length));
        await coordinator.ExpectMsgAsync<RequestWork>();   // and pulls the next one
        Assert.Empty(engine.Applied);
    }

    [Fact]
    public async Task Should_fetch_a_newer_policy_in_chunks_before_generating_work_that_asks_for_it()
    {
        var coordinator = CreateTestProbe();
        var server = CreateTestProbe();
        var engine = new FakeRollout(1);
        var rollout = Sys.ActorOf(RolloutActor.Props(engine, coordinator.Ref, "w1"));
        await coordinator.ExpectMsgAsync<RequestWork>();

        rollout.Tell(Work(12, 4), coordinator.Ref);
        Assert.Equal(new QueryWeights(WeightKind.Policy), await coordinator.ExpectMsgAsync<QueryWeights>());
        var blob = new WeightBlob(WeightKind.Policy, 4, Enumerable.Range(0, 250).Select(i => (byte)i).ToArray(), chunkSize: 100);
        rollout.Tell(blob.Announcement, server.Ref);
        for (int i = 0; i < 3; i++)
        {
            var ask = await server.ExpectMsgAsync<FetchChunk>();
            rollout.Tell(blob.Chunk(ask.Index), server.Ref);
        }

        var batch = await coordinator.ExpectMsgAsync<RolloutBatch>();
        Assert.Equal((12L, 4L), (batch.BatchId, batch.PolicyVersion));
        Assert.Equal([(4L, 250)], engine.Applied);
    }

    [Fact]
    public async Task Should_report_a_failed_batch_with_its_reason_and_keep_pulling_work()
    {
        var coordinator = CreateTestProbe();
        var engine = new FakeRollout(0) { FailWith = "out of memory" };
        var rollout = Sys.ActorOf(RolloutActor.Props(engine, coordinator.Ref, "w1"));
        await coordinator.ExpectMsgAsync<RequestWork>();
        rollout.Tell(Work(13, 0), coordinator.Ref);
        Assert.Equal(new RolloutFailed(13, "w1", "out of memory"), await coordinator.ExpectMsgAsync<RolloutFailed>());
        await coordinator.ExpectMsgAsync<RequestWork>();
    }
}

public sealed class RewardActorSpecs(ITestOutputHelper output) : ActorSpec(output)
{
    [Fact]
    public async Task Should_register_with_the_coordinator_and_score_batches()
    {
        var coordinator = CreateTestProbe();
        var reward = Sys.ActorOf(RewardActor.Props(new FakeReward(), coordinator.Ref, "r1"));
        Assert.Equal(new RegisterWorker("r1", "reward"), await coordinator.ExpectMsgAsync<RegisterWorker>());
        reward.Tell(new ScoreBatch(5, -1, Batch(5, 0, "w1")), coordinator.Ref);
        var scored = await coordinator.ExpectMsgAsync<ScoredBatch>();
        Assert.Equal(5L, scored.BatchId);
        Assert.Equal([1f, 0f], scored.Scores);
    }

    [Fact]
    public async Task Should_answer_a_scoring_failure_with_its_reason()
    {
        var coordinator = CreateTestProbe();
        var reward = Sys.ActorOf(RewardActor.Props(new FakeReward { FailWith = "scorer unreachable" }, coordinator.Ref, "r1"));
        await coordinator.ExpectMsgAsync<RegisterWorker>();
        reward.Tell(new ScoreBatch(6, -1, Batch(6, 0, "w1")), coordinator.Ref);
        Assert.Equal(new ScoreFailed(6, "scorer unreachable"), await coordinator.ExpectMsgAsync<ScoreFailed>());
    }
}

public sealed class LearnerActorSpecs(ITestOutputHelper output) : ActorSpec(output)
{
    static readonly JobSpec Job = JobHarness.Job(JobHarness.Ppo(2));

    [Fact]
    public async Task Should_publish_the_initial_weights_and_a_new_version_after_every_update()
    {
        var server = CreateTestProbe();
        var coordinator = CreateTestProbe();
        var engine = new FakeLearner();
        var learner = Sys.ActorOf(LearnerActor.Props(engine, Job, server.Ref));
        Assert.Equal(0, (await server.ExpectMsgAsync<ServeBlob>()).Blob.Version);

        learner.Tell(new TrainOn(1, 0, Batch(1, 0, "w1"), Scored(1)), coordinator.Ref);
        var served = await server.ExpectMsgAsync<ServeBlob>();
        var updated = await coordinator.ExpectMsgAsync<PolicyUpdated>();
        Assert.Equal((1L, 1L, false), (served.Blob.Version, updated.PolicyVersion, served.Blob.AdapterOnly));
        Assert.Equal([1L], engine.TrainedOn);

        // With LoRA the published versions carry only adapters and name their base.
        (engine.ExportsAdapterOnly, engine.AdapterBaseVersion) = (true, 1);
        learner.Tell(new TrainOn(2, 0, Batch(2, 1, "w1"), Scored(2)), coordinator.Ref);
        var adapters = (await server.ExpectMsgAsync<ServeBlob>()).Blob.Announcement;
        Assert.Equal((2L, true, 1L, 10L), (adapters.Version, adapters.AdapterOnly, adapters.BaseVersion, adapters.TotalBytes));
        await coordinator.ExpectMsgAsync<PolicyUpdated>();
    }

    [Fact]
    public async Task Should_report_a_failed_step_without_publishing()
    {
        var server = CreateTestProbe();
        var coordinator = CreateTestProbe();
        var learner = Sys.ActorOf(LearnerActor.Props(new FakeLearner { FailWith = "loss is NaN" }, Job, server.Ref));
        await server.ExpectMsgAsync<ServeBlob>();
        learner.Tell(new TrainOn(1, 0, Batch(1, 0, "w1"), Scored(1)), coordinator.Ref);
        Assert.Equal(new LearnerFailed(0, "loss is NaN"), await coordinator.ExpectMsgAsync<LearnerFailed>());
        await server.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
    }
}

public sealed class CoordinatorActorSpecs(ITestOutputHelper output) : ActorSpec(output)
{
    [Fact]
    public async Task Should_requeue_work_when_a_rollout_worker_dies_and_train_on_each_batch_exactly_once()
    {
        var job = JobHarness.Job(JobHarness.Ppo(2), extra: "max-policy-lag = 1");
        var learner = CreateTestProbe();
        var server = CreateTestProbe();
        var watcher = CreateTestProbe();
        var coordinator = Sys.ActorOf(CoordinatorActor.Props(job, (_, _) => (learner.Ref, server.Ref), new RunRecorder(job.RunDirectory), watcher.Ref));

        Assert.Equal(new BeginOnline(0), await learner.ExpectMsgAsync<BeginOnline>());
        coordinator.Tell(new OnlineReady(0, 0), learner.Ref);
        Assert.Equal("before", (await learner.ExpectMsgAsync<EvaluateWith>()).Label);
        coordinator.Tell(new EvaluationDone(0, "before", new() { ["eval/reward"] = 0.3 }, [], []), learner.Ref);

        var reward = CreateTestProbe();
        coordinator.Tell(new RegisterWorker("r1", "reward"), reward.Ref);
        var a = CreateTestProbe();
        var b = CreateTestProbe();
        coordinator.Tell(new RequestWork("a", 0), a.Ref);
        coordinator.Tell(new RequestWork("b", 0), b.Ref);
        var first = await a.ExpectMsgAsync<GenerateRollouts>();
        var second = await b.ExpectMsgAsync<GenerateRollouts>();
        Assert.NotEqual(first.BatchId, second.BatchId);

        // Worker a dies holding its batch: a newcomer gets the same batch id.
        Sys.Stop(a.Ref);
        var c = CreateTestProbe();
        coordinator.Tell(new RequestWork("c", 0), c.Ref);
        Assert.Equal(first.BatchId, (await c.ExpectMsgAsync<GenerateRollouts>()).BatchId);

        coordinator.Tell(Batch(first.BatchId, 0, "c"), c.Ref);
        coordinator.Tell(Batch(first.BatchId, 0, "a"), c.Ref);   // a late copy from the dead worker is ignored
        coordinator.Tell(Batch(second.BatchId, 0, "b"), b.Ref);
        var scoring = new[] { await reward.ExpectMsgAsync<ScoreBatch>(), await reward.ExpectMsgAsync<ScoreBatch>() };
        await reward.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
        Assert.Equal(new[] { first.BatchId, second.BatchId }.Order(), scoring.Select(s => s.BatchId).Order());

        foreach (var s in scoring) coordinator.Tell(Scored(s.BatchId), reward.Ref);
        var trained = new List<long>();
        for (int v = 1; v <= 2; v++)
        {
            var train = await learner.ExpectMsgAsync<TrainOn>();
            trained.Add(train.BatchId);
            coordinator.Tell(new PolicyUpdated(train.BatchId, 0, v, v, new() { ["reward/mean"] = 0.5 }), learner.Ref);
        }
        Assert.Equal(new[] { first.BatchId, second.BatchId }.Order(), trained.Order());

        Assert.Equal("after", (await learner.ExpectMsgAsync<EvaluateWith>()).Label);
        coordinator.Tell(new EvaluationDone(0, "after", new() { ["eval/reward"] = 0.6 }, [], []), learner.Ref);
        var save = await learner.ExpectMsgAsync<SaveCheckpoint>();
        coordinator.Tell(new CheckpointSaved(save.Directory), learner.Ref);
        var finished = await watcher.FishForMessageAsync<JobFinished>(m => m is JobFinished);
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal((2.0, 1.0), (finished.Summary["job/batches_trained"], finished.Summary["job/batches_reissued"]));
    }

    [Fact]
    public async Task Should_drop_a_batch_older_than_the_staleness_bound_and_generate_it_again()
    {
        var job = JobHarness.Job(JobHarness.Ppo(2), extra: "max-policy-lag = 0");
        var learner = CreateTestProbe();
        var watcher = CreateTestProbe();
        var coordinator = Sys.ActorOf(CoordinatorActor.Props(job, (_, _) => (learner.Ref, CreateTestProbe().Ref), new RunRecorder(job.RunDirectory), watcher.Ref));
        await learner.ExpectMsgAsync<BeginOnline>();
        coordinator.Tell(new OnlineReady(0, 5), learner.Ref);
        await learner.ExpectMsgAsync<EvaluateWith>();
        coordinator.Tell(new EvaluationDone(0, "before", new(), [], []), learner.Ref);
        var reward = CreateTestProbe();
        coordinator.Tell(new RegisterWorker("r1", "reward"), reward.Ref);
        var w = CreateTestProbe();
        coordinator.Tell(new RequestWork("w", 5), w.Ref);
        var work = await w.ExpectMsgAsync<GenerateRollouts>();
        Assert.Equal(5, work.PolicyVersion);

        // The worker answers with a batch generated by an older policy (v4 < v5 with lag 0): it is dropped before training.
        coordinator.Tell(Batch(work.BatchId, 4, "w"), w.Ref);
        var score = await reward.ExpectMsgAsync<ScoreBatch>();
        coordinator.Tell(Scored(score.BatchId), reward.Ref);
        await learner.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
        coordinator.Tell(new RequestWork("w", 5), w.Ref);
        var again = await w.ExpectMsgAsync<GenerateRollouts>();
        Assert.NotEqual(work.BatchId, again.BatchId);
        Assert.Equal(5, again.PolicyVersion);
    }
}
