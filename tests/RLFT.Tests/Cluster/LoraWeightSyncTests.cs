using Rlft.Actors.Runtime;
using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using static TorchSharp.torch;

namespace Rlft.Tests.Cluster;

/// <summary>A LoRA job through the actors: only adapters are trained and moved (the wire-level case is in WeightSyncTests).</summary>
public sealed class LoraWeightSyncTests
{
    [Fact]
    public async Task A_lora_ppo_job_through_the_actors_trains_only_adapters_and_every_replica_matches_the_learner()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(4)),
            extra: "lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj] }");
        var engines = new JobHarness.RecordingFactory();
        var (node, finished) = await JobHarness.RunAllRoles(job, engines, ct);
        await using var _ = node;
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
        // One copy of the base in the process: the local replica's base tensors are the learner's own memory, and the
        // learner keeps no frozen reference copy (the reference is the policy with its adapters off).
        var learnerState = learner.Policy.Model.state_dict();
        foreach (var (name, t) in replicaState.Where(kv => !kv.Key.Contains(".lora_")))
            Assert.True(ParameterSharing.SameStorage(t, learnerState[name]), $"base tensor {name}: the replica holds its own copy");
        Assert.Null(learner.ReferenceCopy);
        // The replica's adapters came from the learner and are trained (B starts at zero).
        Assert.Contains(replica.Adapters!.StateDict(), kv => kv.Key.EndsWith("lora_B.weight") && kv.Value.abs().max().item<float>() > 0);
        var checkpoint = Directory.GetDirectories(Path.Combine(job.RunDirectory, "checkpoints")).Single();
        Assert.True(File.Exists(Path.Combine(checkpoint, "policy-adapter", LoraAdapters.ConfigFile)));
        Assert.True(File.Exists(Path.Combine(checkpoint, "policy", "config.json")));
    }

    [Theory]
    [InlineData(true)]    // SFT first: fp32 masters and a bf16 compute copy until the adapters attach
    [InlineData(false)]   // PPO first: the base is read straight into bf16
    public async Task A_lora_job_with_bf16_compute_holds_one_bf16_base_for_learner_and_replica_and_trains_fp32_adapters(bool sftFirst)
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(sftFirst ? string.Join("\n", JobHarness.Sft, JobHarness.Ppo(3)) : JobHarness.Ppo(3),
            extra: "lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj] }\n precision = bf16");
        var engines = new JobHarness.RecordingFactory();
        var (node, finished) = await JobHarness.RunAllRoles(job, engines, ct);
        await using var _ = node;
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(3, finished.Summary["job/batches_trained"]);

        var learner = Assert.Single(engines.Learners);
        var replica = Assert.Single(engines.Rollouts);
        // An SFT stage trains fp32 masters through a bf16 copy; once the adapters attach, the base is bf16 alone.
        Assert.Null(learner.Mixed);
        var learnerState = learner.Policy.Model.state_dict();
        foreach (var (name, t) in learnerState)
            Assert.Equal(name.Contains(".lora_") ? ScalarType.Float32 : ScalarType.BFloat16, t.dtype);
        // The replica reads the same bf16 tensors and carries fp32 adapters equal to the learner's last published ones.
        foreach (var (name, t) in replica.Replica!.Model.state_dict())
        {
            if (name.Contains(".lora_")) Assert.Equal(ScalarType.Float32, t.dtype);
            else Assert.True(ParameterSharing.SameStorage(t, learnerState[name]), $"base tensor {name}: the replica holds its own copy");
        }
        Assert.Contains(learner.Adapters!.StateDict(), kv => kv.Key.EndsWith("lora_B.weight") && kv.Value.abs().max().item<float>() > 0);
        // The checkpoint's base is the bf16 weights written as fp32 (exact), with the adapters beside it.
        var checkpoint = Directory.GetDirectories(Path.Combine(job.RunDirectory, "checkpoints")).Single();
        using var saved = Rlft.Policy.Checkpoints.Checkpoint.Load(Path.Combine(checkpoint, "policy"));
        foreach (var (name, t) in saved.state_dict())
            Assert.True(t.to(ScalarType.BFloat16).Equals(learnerState[name]), $"checkpoint tensor {name} differs from the learner's base");
        Assert.True(File.Exists(Path.Combine(checkpoint, "policy-adapter", LoraAdapters.ConfigFile)));
    }

    [Fact]
    public async Task A_reward_worker_in_the_learners_process_scores_with_the_learners_own_reward_model_tensors()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.RewardModel, JobHarness.Ppo(2, "sources = [ { type = reward-model } ]")));
        var engines = new JobHarness.RecordingFactory();
        var (node, finished) = await JobHarness.RunAllRoles(job, engines, ct);
        await using var _ = node;
        Assert.True(finished.Succeeded, finished.Message);

        var trained = Assert.Single(engines.Learners).TrainedRewardModel!.Trunk.Model.state_dict();
        var scoring = Assert.Single(engines.Rewards).RewardModel!.Trunk.Model.state_dict();
        Assert.Equal(trained.Keys.Order(), scoring.Keys.Order());
        foreach (var (name, t) in trained)
            Assert.True(ParameterSharing.SameStorage(t, scoring[name]), $"reward model tensor {name}: the reward worker holds its own copy");
    }
}
