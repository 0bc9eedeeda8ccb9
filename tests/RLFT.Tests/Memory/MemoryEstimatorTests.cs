using FsCheck.Xunit;
using Rlft.Policy.Lora;
using Rlft.Policy.Memory;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using Rlft.Tests.Policy;
using static TorchSharp.torch;

namespace Rlft.Tests.Memory;

/// <summary>The memory estimate's items against hand-counted parameters, and the invariants its totals keep.</summary>
public class MemoryEstimatorTests
{
    // TinyModels' gpt2: vocab 97, H 32, 2 layers, 64 positions, tied head.
    const long H = 32, V = TinyModels.Vocab, Positions = 64, Layers = 2;
    // wte + wpe + per block (ln_1, c_attn, c_proj, ln_2, c_fc, mlp c_proj) + ln_f.
    const long Gpt2Parameters = V * H + Positions * H + Layers * (2 * H + (H * 3 * H + 3 * H) + (H * H + H) + 2 * H + (H * 4 * H + 4 * H) + (4 * H * H + H)) + 2 * H;

    static MemoryStage Ppo(int batch = 8, int tokens = 32, bool checkpointed = false) => new()
    {
        Name = "ppo", Kind = MemoryStageKind.Ppo, BatchSize = batch, CompletionTokens = tokens, GradientCheckpointing = checkpointed,
    };

    static MemoryJob Job(ModelConfig config, params MemoryStage[] stages) => new() { Model = config, Stages = stages };

    static long Item(MemoryEstimate e, string startsWith) => e.Items.Single(i => i.What.StartsWith(startsWith, StringComparison.Ordinal)).Bytes;

    [Fact]
    public void Full_ppo_holds_the_weights_gradients_and_moments_of_every_parameter_and_a_frozen_reference()
    {
        var e = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo()));
        Assert.Equal(4 * Gpt2Parameters, Item(e, "policy weights"));
        // The value head (H weights and a bias) trains beside the policy.
        Assert.Equal(4 * (Gpt2Parameters + H + 1), Item(e, "gradients"));
        Assert.Equal(8 * (Gpt2Parameters + H + 1), Item(e, "AdamW"));
        Assert.Equal(4 * Gpt2Parameters, Item(e, "frozen reference"));
        // With max-policy-lag 1 the replica generates with a shelved copy while the learner trains: the newest and the
        // one in use. The replica shares it, so it holds no weights of its own; no serialized bytes exist in one process.
        Assert.Equal(2 * 4 * Gpt2Parameters, Item(e, "published versions"));
        Assert.DoesNotContain(e.Items, i => i.What.StartsWith("replica weights", StringComparison.Ordinal));
        Assert.DoesNotContain(e.Items, i => i.What.Contains("serialized", StringComparison.Ordinal));
        // With no lag the replica reads the learner's own tensors.
        var onPolicy = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo()) with { MaxPolicyLag = 0 });
        Assert.DoesNotContain(onPolicy.Items, i => i.What.StartsWith("published versions", StringComparison.Ordinal));
        // KV cache: keys and values, every layer, 8 sequences of 64 prompt + 32 new tokens, H wide; a step's logits and probabilities.
        Assert.Equal(2 * Layers * H * 8 * (64 + 32) * 4 + 2 * 8 * V * 4, Item(e, "replica KV cache"));
        Assert.Equal(e.Items.Sum(i => i.Bytes), e.Total);
        Assert.Equal(e.Total, e.ByRole.Sum(r => r.Bytes));
    }

    [Theory]
    [InlineData(nameof(MemoryStageKind.Grpo), 8, 4, 8)]        // two prompts, each sampled four times
    [InlineData(nameof(MemoryStageKind.Grpo), 10, 4, 8)]       // whole groups only: two prompts
    [InlineData(nameof(MemoryStageKind.Grpo), 2, 4, 4)]        // fewer completions than a group: one prompt's group
    [InlineData(nameof(MemoryStageKind.OnlineDpo), 8, 2, 8)]   // four prompts, a pair each
    public void A_grouped_stage_generates_and_trains_on_batch_size_completions_as_the_prompt_source_draws_them(string kindName, int batch, int group, int completions)
    {
        var kind = Enum.Parse<MemoryStageKind>(kindName);
        // batch-size counts completions (OnlineStageData.NextBatch draws batch-size / group prompts), so the KV cache
        // and a training forward hold as many sequences as a PPO stage of that many prompts.
        var grouped = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo(batch) with { Kind = kind, SamplesPerPrompt = group }) with { MaxPolicyLag = 0, EvalPrompts = 0 });
        var ppo = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo(completions)) with { MaxPolicyLag = 0, EvalPrompts = 0 });
        Assert.Equal(2 * Layers * H * completions * (64 + 32) * 4 + 2 * completions * V * 4, Item(grouped, "replica KV cache"));
        Assert.Equal(Item(ppo, "activations"), Item(grouped, "activations"));
        Assert.Contains(grouped.Items, i => i.What.StartsWith($"activations ({completions} ×", StringComparison.Ordinal));
    }

    [Fact]
    public void Eight_bit_adamw_holds_two_bytes_per_trained_weight_and_an_absmax_per_block_of_each_moment()
    {
        var stage = Ppo() with { Optimizer = Rlft.Policy.Training.OptimizerKind.AdamW8bit };
        var e = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), stage));
        long trained = Gpt2Parameters + H + 1, blocks = (trained + 2047) / 2048;
        Assert.Equal(2 * trained + 2 * 4 * blocks, Item(e, "AdamW moments (8-bit"));
        var fp32 = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo()));
        Assert.Equal(fp32.Total - 8 * trained + 2 * trained + 8 * blocks, e.Total);
    }

    [Fact]
    public void Each_replica_of_a_learner_group_holds_the_learners_models_and_state_and_a_share_of_the_activations()
    {
        var solo = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo(batch: 16)) with { EvalPrompts = 1 });
        var group = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo(batch: 16)) with { EvalPrompts = 1, Learners = 3 });
        // Policy, gradients and moments (with the value head), the frozen reference.
        long perLearner = 4 * Gpt2Parameters + 12 * (Gpt2Parameters + H + 1) + 4 * Gpt2Parameters;
        long share = MemoryEstimator.Activations(ModelShape.Of(TinyModels.Config("gpt2"), null, new QuantizationOptions()), 6 * (64 + 32), checkpointed: false);
        Assert.Equal(share, Item(group, "activations (6 × 96 tokens"));                   // ⌈16 / 3⌉ sequences each
        Assert.Equal(2 * (perLearner + share), Item(group, "2 learner replica(s)"));
        Assert.DoesNotContain(solo.Items, i => i.What.Contains("learner replica", StringComparison.Ordinal));
        Assert.True(group.Total > solo.Total + perLearner, $"{group.Total} vs {solo.Total}");
    }

    [Fact]
    public void Lora_trains_only_the_adapters_of_the_targeted_projections()
    {
        var lora = new LoraConfig { Rank = 4, TargetModules = ["c_attn", "c_proj"] };
        var e = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo()) with { Lora = lora });
        // c_attn H→3H; c_proj is attention's H→H and the MLP's 4H→H: r·(in + out) each, per layer.
        long adapters = Layers * 4 * ((H + 3 * H) + (H + H) + (4 * H + H));
        Assert.Equal(4 * adapters, Item(e, "LoRA adapters"));
        Assert.Equal(4 * (adapters + H + 1), Item(e, "gradients"));
        // One copy of the base: no frozen reference (the adapters switched off), the replica shares the learner's base
        // and holds only its adapters; a bf16 replica cannot share an fp32 base and holds its own bf16 copy.
        Assert.DoesNotContain(e.Items, i => i.What.StartsWith("frozen reference", StringComparison.Ordinal));
        Assert.Equal(4 * adapters, Item(e, "replica weights (the learner's, shared) + adapters"));
        var bf16 = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), Ppo()) with { Lora = lora, FrozenDtype = TorchSharp.torch.ScalarType.BFloat16 });
        Assert.Equal(2 * Gpt2Parameters + 4 * adapters, Item(bf16, "replica weights (its own bf16 copy) + adapters"));
    }

    [Theory]
    [InlineData("sft")]
    [InlineData("dpo")]
    public void A_lora_job_with_no_online_stage_is_estimated_as_lora_in_every_stage(string kind)
    {
        string Text(string lora) => $"rlft.job {{ name = t, device = cpu, model {{ arch = gpt2, preset = tiny }}\n {lora}\n stages = [ {{ kind = {kind}, data = x, steps = 1, batch-size = 8 }} ] }}";
        var full = Rlft.Actors.Jobs.JobMemory.Estimate(Rlft.Actors.Jobs.JobSpec.Parse(Rlft.Actors.Configuration.RlftConfig.ParseText(Text(""), "job.conf")));
        var job = Rlft.Actors.Jobs.JobSpec.Parse(Rlft.Actors.Configuration.RlftConfig.ParseText(Text("lora { rank = 4, target-modules = [c_attn, c_proj] }"), "job.conf"));
        Assert.True(Rlft.Actors.Jobs.JobMemory.Describe(job).LoraFromStart);
        var e = Rlft.Actors.Jobs.JobMemory.Estimate(job);
        var shape = ModelShape.Of(Rlft.Actors.Jobs.JobMemory.Describe(job).Model, job.Lora, new QuantizationOptions());
        var (adapters, parameters) = (shape.LoraParameters, shape.Parameters);
        Assert.True(adapters > 0 && adapters < parameters / 10);
        // The frozen base once, the adapters with their gradients and AdamW moments; no full-weight gradients or moments,
        // and DPO keeps no frozen copy (its reference is the base plus a snapshot of the adapters as the stage found them).
        Assert.Equal(4 * parameters, Item(e, "policy weights"));
        Assert.Equal(4 * adapters, Item(e, "LoRA adapters"));
        Assert.Equal(4 * adapters, Item(e, "gradients"));
        Assert.Equal(8 * adapters, Item(e, "AdamW"));
        Assert.DoesNotContain(e.Items, i => i.What.StartsWith("frozen reference", StringComparison.Ordinal));
        if (kind == "dpo")
        {
            Assert.Equal(4 * adapters, Item(e, "reference adapters"));
            Assert.Equal(4 * parameters, Item(full, "frozen reference"));
        }
        Assert.Equal(12 * parameters, Item(full, "gradients") + Item(full, "AdamW"));
        Assert.True(e.Total < full.Total - 10 * parameters, $"{e.Total} vs {full.Total}");
    }

    [Fact]
    public void A_quantized_base_stores_its_projections_in_about_half_a_byte_per_weight()
    {
        var config = PublishedShapes.Config("qwen2-0.5b", 0, 0, 1);
        var nf4 = new QuantizationOptions { Kind = QuantizationKind.Nf4 };
        var full = ModelShape.Of(config, null, new QuantizationOptions());
        var quantized = ModelShape.Of(config, null, nf4);
        using var meta = ModelFactory.CreateMeta(config);
        long projections = meta.DenseLayers().Where(d => nf4.Quantizes(d.Name)).Sum(d => d.Layer.InFeatures * d.Layer.OutFeatures);
        double perWeight = (double)(quantized.BaseBytes - 4 * (full.Parameters - projections)) / projections;
        Assert.InRange(perWeight, 0.515, 0.518);   // 4.13 bits: NF4 codes and 8-bit block scales (README)
        Assert.Equal(494_032_768, full.Parameters); // Qwen2-0.5B's published count
    }

    [Fact]
    public void The_peak_is_the_largest_stage_and_a_reward_model_is_held_from_its_stage_on()
    {
        var sft = new MemoryStage { Name = "sft", Kind = MemoryStageKind.Sft, BatchSize = 1 };
        var rm = new MemoryStage { Name = "rm", Kind = MemoryStageKind.RewardModel, BatchSize = 1 };
        var ppo = Ppo() with { ScoredByRewardModel = true };
        var e = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), sft, rm, ppo) with { SequenceTokens = 32 });
        Assert.Equal("ppo", e.Stage);
        Assert.Equal(4 * Gpt2Parameters, Item(e, "reward model (fp32)"));
        Assert.Equal(0, e.Of(MemoryRole.Reward));   // the reward worker scores with the learner's own tensors
        var bf16 = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), sft, rm, ppo) with { SequenceTokens = 32, FrozenDtype = TorchSharp.torch.ScalarType.BFloat16 });
        Assert.Equal(2 * Gpt2Parameters, bf16.Of(MemoryRole.Reward));   // a bf16 copy of an fp32 reward model is its own
        var sftOnly = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), sft));
        Assert.DoesNotContain(sftOnly.Items, i => i.Role is MemoryRole.Rollout or MemoryRole.Reward or MemoryRole.WeightServer);
    }

    [Property(MaxTest = 40)]
    public void More_tokens_or_samples_never_need_less_and_checkpointing_and_lora_never_need_more(byte batchSeed, byte tokensSeed, bool llama)
    {
        int batch = 1 + batchSeed % 32, tokens = 1 + tokensSeed % 200;
        var config = TinyModels.Config(llama ? "llama" : "gpt2");
        long Total(MemoryStage s, LoraConfig? lora = null) => MemoryEstimator.Estimate(Job(config, s) with { Lora = lora }).Total;
        long plain = Total(Ppo(batch, tokens));
        Assert.True(Total(Ppo(batch + 1, tokens)) > plain);
        Assert.True(Total(Ppo(batch, tokens + 1)) > plain);
        // Checkpointing lowers the step's activations; the learner's working memory may be the evaluation's instead.
        Assert.True(Total(Ppo(batch, tokens, checkpointed: true)) <= plain);
        Assert.True(MemoryEstimator.Activations(ModelShape.Of(config, null, new()), batch * tokens, checkpointed: true)
            < MemoryEstimator.Activations(ModelShape.Of(config, null, new()), batch * tokens, checkpointed: false));
        Assert.True(Total(Ppo(batch, tokens), new LoraConfig { TargetModules = ["c_attn", "q_proj", "v_proj"] }) < plain);
        Assert.True(MemoryEstimator.Estimate(Job(config, Ppo(batch, tokens)) with { FrozenDtype = ScalarType.BFloat16 }).Total < plain);
    }

    [Theory]
    [InlineData("8G", 8L << 30)]
    [InlineData("1.5g", 3L << 29)]
    [InlineData("512M", 512L << 20)]
    [InlineData("1073741824", 1L << 30)]
    public void Sizes_are_read_with_binary_suffixes(string text, long bytes) => Assert.Equal(bytes, AvailableMemory.ParseSize(text));

    [Theory]
    [InlineData("")]
    [InlineData("lots")]
    [InlineData("-1G")]
    public void Sizes_that_are_not_sizes_are_refused(string text) => Assert.Null(AvailableMemory.ParseSize(text));

    [Theory]
    [InlineData(512, "512 B")]
    [InlineData(1536, "1.50 KiB")]
    [InlineData(823L << 20, "823 MiB")]
    [InlineData(2_100_000_000, "1.96 GiB")]
    public void Byte_counts_print_in_binary_units(long bytes, string text) => Assert.Equal(text, MemoryEstimate.Human(bytes));

    /// <summary>
    /// An encoder stage (classify, qa, an encoder reward model) is estimated on its own encoder: the policy is only held,
    /// the encoder's weights, gradients and moments count 16 bytes per parameter of the model itself (LoRA: the adapters
    /// and the head train), and its activations grow with batch × tokens.
    /// </summary>
    [Theory]
    [InlineData("bert")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    public void An_encoder_stage_holds_its_encoders_training_state_beside_the_policy_weights(string arch)
    {
        var encoder = Rlft.Policy.Encoders.EncoderPresets.Config(arch, "small", 2048);
        long parameters;
        // Counted on the meta device: making the model's weights would draw from the process-wide generator other tests use.
        using (var model = Rlft.Policy.Encoders.EncoderCheckpoint.CreateMeta(encoder)) parameters = model.parameters().Sum(p => p.numel());
        var stage = new MemoryStage { Name = "classify", Kind = MemoryStageKind.Encoder, BatchSize = 16, SequenceTokens = 64, Encoder = encoder };
        var e = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), stage));
        Assert.Equal(4 * Gpt2Parameters, Item(e, "policy weights"));
        Assert.Equal(4 * parameters, Item(e, "encoder weights"));
        Assert.Equal(4 * parameters, Item(e, "encoder gradients"));
        Assert.Equal(8 * parameters, Item(e, "encoder AdamW"));
        Assert.DoesNotContain(e.Items, i => i.What.StartsWith("gradients", StringComparison.Ordinal) || i.What.StartsWith("frozen", StringComparison.Ordinal));
        var twice = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), stage with { BatchSize = 32 }));
        Assert.Equal(2 * Item(e, "encoder activations"), Item(twice, "encoder activations"), tolerance: 2);
        var lora = MemoryEstimator.Estimate(Job(TinyModels.Config("gpt2"), stage with { EncoderLora = new LoraConfig { Rank = 8 } }));
        Assert.True(Item(lora, "encoder gradients") < Item(e, "encoder gradients") / 5, "with LoRA the encoder's body does not train");
        Assert.True(Item(lora, "encoder LoRA adapters") > 0);
    }
}
