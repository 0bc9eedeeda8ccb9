using Akka.Actor;
using Akka.Configuration;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Lora;
using Rlft.Policy.Training;
using Rlft.Tests.Training;
using static TorchSharp.torch;

namespace Rlft.Tests.Cluster;

/// <summary>With LoRA, weight sync moves only adapter tensors; a replica without the base fetches it first.</summary>
public sealed class LoraWeightSyncTests : IAsyncDisposable
{
    readonly ActorSystem _system = ActorSystem.Create("lora-sync",
        ConfigurationFactory.ParseString("akka.actor.provider = local\nakka.actor.serialize-messages = on").WithFallback(RlftConfig.BaseAkka().Config));

    public async ValueTask DisposeAsync() => await _system.Terminate();

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

    [Fact]
    public async Task A_lora_ppo_job_through_the_actors_trains_only_adapters_and_every_replica_matches_the_learner()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(4)),
            extra: "lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj] }");
        var engines = new JobHarness.RecordingFactory();
        await using var node = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "rollout", "reward"], ExtraHocon = JobHarness.TestHocon,
        }, engines);
        await node.StartAsync(ct);
        var finished = await node.Finished.WaitAsync(TimeSpan.FromMinutes(3), ct);
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(4, finished.Summary["job/batches_trained"]);

        var learner = Assert.Single(engines.Learners);
        var replica = Assert.Single(engines.Rollouts);
        Assert.NotNull(learner.Adapters);
        Assert.True(learner.ExportsAdapterOnly);
        // The replica took the base once (the version after SFT) and adapters after every update but the last
        // (the last version is published after the final batch was generated).
        Assert.Equal(learner.AdapterBaseVersion, replica.BaseVersion);
        Assert.True(replica.PolicyVersion > replica.BaseVersion, $"replica at v{replica.PolicyVersion} on base v{replica.BaseVersion}");
        var baseNow = learner.Policy.Model.state_dict().Where(kv => !kv.Key.Contains(".lora_")).ToList();
        var replicaState = replica.Replica!.Model.state_dict();
        foreach (var (name, t) in baseNow)
            Assert.True(t.Equals(replicaState[name]), $"base tensor {name}: the replica's differs from the learner's (the base must stay frozen)");
        // The replica's adapters came over the wire and are trained (B starts at zero).
        Assert.Contains(replica.Adapters!.StateDict(), kv => kv.Key.EndsWith("lora_B.weight") && kv.Value.abs().max().item<float>() > 0);
        var checkpoint = Directory.GetDirectories(Path.Combine(job.RunDirectory, "checkpoints")).Single();
        Assert.True(File.Exists(Path.Combine(checkpoint, "policy-adapter", LoraAdapters.ConfigFile)));
        Assert.True(File.Exists(Path.Combine(checkpoint, "policy", "config.json")));
    }
}
