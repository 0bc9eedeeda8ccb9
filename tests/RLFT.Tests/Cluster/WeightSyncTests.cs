using Akka.Actor;
using Akka.Configuration;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Lora;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Tests.Training;

using static TorchSharp.torch;

namespace Rlft.Tests.Cluster;

public sealed class WeightSyncTests : IAsyncDisposable
{
    readonly ActorSystem _system = ActorSystem.Create("sync",
        ConfigurationFactory.ParseString("akka.actor.provider = local\nakka.actor.serialize-messages = on").WithFallback(RlftConfig.BaseAkka().Config));

    public async ValueTask DisposeAsync() => await _system.Terminate();

    /// <summary>Stands in for the coordinator: hands one batch of work to a rollout actor and routes weight queries.</summary>
    sealed class Driver : ReceiveActor
    {
        public Driver(IActorRef weights, GenerateRollouts work, TaskCompletionSource<RolloutBatch> done)
        {
            bool sent = false;
            Receive<RequestWork>(_ => { if (!sent) { sent = true; Sender.Tell(work); } });
            Receive<QueryWeights>(q => weights.Forward(q));
            Receive<RolloutBatch>(b => done.TrySetResult(b));
            Receive<RolloutFailed>(f => done.TrySetException(new Exception(f.Reason)));
        }
    }

    /// <summary>A weight server link that corrupts the first chunk it relays.</summary>
    sealed class CorruptOnce : ReceiveActor
    {
        public int Corrupted;
        public CorruptOnce(IActorRef server, Action onCorrupt)
        {
            var waiting = new Dictionary<(long, int), IActorRef>();
            Receive<FetchChunk>(f => { waiting[(f.Version, f.Index)] = Sender; server.Tell(f); });
            Receive<WeightChunk>(c =>
            {
                var to = waiting[(c.Version, c.Index)];
                if (Corrupted++ == 0) { onCorrupt(); var bad = (byte[])c.Data.Clone(); bad[^1] ^= 0x5a; to.Tell(c with { Data = bad }); }
                else to.Tell(c);
            });
            // Answer queries as ourselves, so the fetching side sends its chunk requests through this link.
            IActorRef? asker = null;
            Receive<QueryWeights>(q => { asker = Sender; server.Tell(q); });
            Receive<WeightsPublished>(a => asker?.Tell(a));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_replica_matches_the_published_weights_bit_for_bit_even_after_a_corrupt_chunk(bool corrupt)
    {
        var ct = TestContext.Current.CancellationToken;
        var source = TinyTask.Load();
        using (TorchSharp.torch.no_grad()) foreach (var p in source.Model.parameters()) p.add_(TorchSharp.torch.randn_like(p) * 0.01);
        var blob = ModelBlob.Pack(source.Model.state_dict(), ModelFiles.Read(TinyTask.ModelDirectory));
        var server = _system.ActorOf(WeightServerActor.Props());
        server.Tell(new ServeBlob(new WeightBlob(WeightKind.Policy, 5, blob, chunkSize: 64 * 1024)));
        int corrupted = 0;
        var link = corrupt ? _system.ActorOf(Props.Create(() => new CorruptOnce(server, () => Interlocked.Increment(ref corrupted)))) : server;

        var done = new TaskCompletionSource<RolloutBatch>();
        var work = new GenerateRollouts(1, 0, 5, [new PromptItem("review the book:", null, 0)], new SamplingSettings(4, 1.0, 0, 1.0), 9);
        var driver = _system.ActorOf(Props.Create(() => new Driver(link, work, done)));
        var job = JobHarness.Job(JobHarness.Sft);
        var engine = new TorchRolloutEngine(job);
        _system.ActorOf(RolloutActor.Props(engine, driver, "w1"));

        var batch = await done.Task.WaitAsync(TimeSpan.FromMinutes(1), ct);
        Assert.Equal(5, batch.PolicyVersion);
        Assert.Equal(corrupt ? 1 : 0, corrupted);
        var replica = engine.Replica!.Model.state_dict();
        foreach (var (name, t) in source.Model.state_dict())
            Assert.True(t.Equals(replica[name]), $"{name} differs from the learner's");
    }

    [Theory]
    [InlineData(nameof(StreamFault.None))]
    [InlineData(nameof(StreamFault.CorruptByte))]
    [InlineData(nameof(StreamFault.Truncate))]
    public async Task A_replica_streams_the_published_weights_bit_for_bit_fetching_a_damaged_stream_again(string faultName)
    {
        var fault = Enum.Parse<StreamFault>(faultName);
        using var stream = new WeightStreamServer("127.0.0.1");
        stream.InjectFault(fault);
        var (source, engine) = await FetchThrough(WeightServerActor.Props(stream));
        AssertReplicaMatches(source, engine);
        Assert.True(SpinWait.SpinUntil(() => stream.Completed == 1, 5000), $"{stream.Completed} streams completed");
        Assert.Equal(fault == StreamFault.None ? 1 : 2, stream.Connections);
    }

    [Fact]
    public async Task A_replica_falls_back_to_chunks_when_the_announced_stream_port_is_unreachable()
    {
        var stream = new WeightStreamServer("127.0.0.1");
        stream.Dispose();   // announced, but nothing listens there any more
        var (source, engine) = await FetchThrough(WeightServerActor.Props(stream));
        AssertReplicaMatches(source, engine);
        Assert.Equal(0, stream.Connections);
    }

    [Fact]
    public async Task With_sync_dtype_bf16_a_streamed_replica_is_within_2_to_the_minus_8_of_every_published_weight()
    {
        using var stream = new WeightStreamServer("127.0.0.1");
        var (source, engine) = await FetchThrough(WeightServerActor.Props(stream, syncBf16: true));
        var replica = engine.Replica!.Model.state_dict();
        bool anyRounded = false;
        using var scope = NewDisposeScope();
        foreach (var (name, t) in source.Model.state_dict())
        {
            var r = replica[name];
            Assert.Equal(ScalarType.Float32, r.dtype);
            double worst = ((r - t).abs() / t.abs().clamp_min(1e-30)).where(t != 0, zeros_like(t)).max().item<float>();
            Assert.True(worst <= Math.Pow(2, -8), $"{name}: relative error {worst}");
            Assert.True(r.where(t == 0, zeros_like(r)).abs().max().item<float>() == 0, $"{name}: a zero weight arrived non-zero");
            anyRounded |= !t.Equals(r);
        }
        Assert.True(anyRounded, "bf16 sync delivered the fp32 weights unchanged");
        Assert.True(SpinWait.SpinUntil(() => stream.Completed == 1, 5000));
    }

    /// <summary>Serves a perturbed tiny model as version 5 from a server made by <paramref name="serverProps"/> and lets a rollout replica fetch it.</summary>
    async Task<(PolicyModel Source, TorchRolloutEngine Engine)> FetchThrough(Props serverProps)
    {
        var source = TinyTask.Load();
        using (no_grad()) foreach (var p in source.Model.parameters()) p.add_(randn_like(p) * 0.01);
        var server = _system.ActorOf(serverProps);
        server.Tell(new ServeBlob(new WeightBlob(WeightKind.Policy, 5, ModelBlob.Pack(source.Model.state_dict(), ModelFiles.Read(TinyTask.ModelDirectory)), chunkSize: 64 * 1024)));
        var done = new TaskCompletionSource<RolloutBatch>();
        var work = new GenerateRollouts(1, 0, 5, [new PromptItem("review the book:", null, 0)], new SamplingSettings(4, 1.0, 0, 1.0), 9);
        var driver = _system.ActorOf(Props.Create(() => new Driver(server, work, done)));
        var engine = new TorchRolloutEngine(JobHarness.Job(JobHarness.Sft));
        _system.ActorOf(RolloutActor.Props(engine, driver, "w1"));
        var batch = await done.Task.WaitAsync(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken);
        Assert.Equal(5, batch.PolicyVersion);
        return (source, engine);
    }

    static void AssertReplicaMatches(PolicyModel source, TorchRolloutEngine engine)
    {
        var replica = engine.Replica!.Model.state_dict();
        foreach (var (name, t) in source.Model.state_dict())
            Assert.True(t.Equals(replica[name]), $"{name} differs from the learner's");
    }

    [Fact]
    public async Task A_fresh_replica_asked_for_an_adapter_version_fetches_its_base_then_the_adapters_and_matches_bit_for_bit()
    {
        var ct = TestContext.Current.CancellationToken;
        var source = TinyTask.Load();
        var files = ModelFiles.Read(TinyTask.ModelDirectory);
        byte[] baseBlob = ModelBlob.Pack(source.Model.state_dict(), files);
        var adapters = LoraAdapters.Apply(source.Model, new LoraConfig { Rank = 4, TargetModules = ["c_attn", "c_proj"] }, seed: 5);
        using (no_grad()) foreach (var p in adapters.Parameters()) p.add_(randn_like(p) * 0.05);
        byte[] adapterBlob = ModelBlob.Pack(adapters.StateDict(), new Dictionary<string, string> { [LoraAdapters.ConfigFile] = adapters.ConfigJson() });

        var server = _system.ActorOf(WeightServerActor.Props());
        server.Tell(new ServeBlob(new WeightBlob(WeightKind.Policy, 2, baseBlob, chunkSize: 64 * 1024)));
        // Two later adapter versions push the base out of the recent list: it must still be served.
        server.Tell(new ServeBlob(new WeightBlob(WeightKind.Policy, 4, adapterBlob, adapterOnly: true, baseVersion: 2)));
        server.Tell(new ServeBlob(new WeightBlob(WeightKind.Policy, 5, adapterBlob, adapterOnly: true, baseVersion: 2)));

        var done = new TaskCompletionSource<RolloutBatch>();
        var work = new GenerateRollouts(1, 0, 5, [new PromptItem("review the book:", null, 0)], new SamplingSettings(4, 1.0, 0, 1.0), 9);
        var driver = _system.ActorOf(Props.Create(() => new Driver(server, work, done)));
        var engine = new TorchRolloutEngine(JobHarness.Job(JobHarness.Sft));
        _system.ActorOf(RolloutActor.Props(engine, driver, "w1"));

        var batch = await done.Task.WaitAsync(TimeSpan.FromMinutes(1), ct);
        Assert.Equal(5, batch.PolicyVersion);
        Assert.Equal((5L, 2L), (engine.PolicyVersion, engine.BaseVersion));
        var replica = engine.Replica!.Model.state_dict();
        foreach (var (name, t) in source.Model.state_dict())
            Assert.True(t.Equals(replica[name]), $"{name} differs from the learner's");
        Assert.Equal(adapters.StateDict().Count, engine.Adapters!.StateDict().Count);
        // The adapters of a rank-4 LoRA on the attention projections are a small fraction of the model.
        Assert.True(adapterBlob.Length * 5 < baseBlob.Length, $"adapter blob {adapterBlob.Length} B vs full {baseBlob.Length} B");
    }
}
