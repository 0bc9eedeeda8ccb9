using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Heads;
using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>qwen3, gemma2, gemma3_text and phi3 end to end: reference logits, checkpoints, heads, LoRA DPO.</summary>
public class FamilyTests
{
    /// <summary>A tiny model of <paramref name="arch"/> with <paramref name="edit"/> applied to its config.json.</summary>
    internal static CausalLM Variant(string arch, Action<JsonObject> edit, long seed = 1, double std = 0.2)
    {
        var o = (JsonObject)TinyModels.Config(arch).Raw.DeepClone();
        edit(o);
        var model = ModelFactory.Create(ModelConfig.Parse(o));
        model.InitWeights(seed, std);
        model.eval();
        return model;
    }

    /// <summary>Every norm weight gets noise, so (1 + w) and w differ and per-head norms are not uniform.</summary>
    internal static void PerturbNorms(CausalLM model, long seed)
    {
        using var _ = no_grad();
        var gen = new Generator((ulong)seed);
        foreach (var (name, p) in model.named_parameters())
            if (p.dim() == 1 && !name.EndsWith("bias")) p.add_(randn(p.shape, generator: gen) * 0.3);
    }

    public static TheoryData<string, string> ReferenceCases => new()
    {
        { "llama", "" }, { "mistral", "window" }, { "qwen2", "" }, { "qwen3", "" },
        { "gemma2", "" }, { "gemma2", "small-caps" }, { "gemma3", "" }, { "gemma3", "linear" },
        { "phi3", "" }, { "phi3", "longrope-short" }, { "phi3", "longrope-long" },
    };

    [Theory]
    [MemberData(nameof(ReferenceCases))]
    public void Logits_match_an_independent_float64_transformers_forward(string arch, string variant)
    {
        // Tolerance 1e-5 on every log-prob of the vocabulary at every position (float32 against float64; measured
        // 1.5e-6 to 3e-6 across these cases), twenty times tighter than the 2e-4 acceptance bound on real checkpoints.
        const double tolerance = 1e-5;
        using var model = Variant(arch, o =>
        {
            switch (variant)
            {
                case "window": o["sliding_window"] = 4; break;
                case "small-caps": o["attn_logit_softcapping"] = 1.5; o["final_logit_softcapping"] = 2.0; break;   // both caps bite
                case "linear": o["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 4.0 }; break;
                case "longrope-short" or "longrope-long":
                    // Original context 8 (the long factors apply past it), extended to 64: attention factor √(1 + ln 8 / ln 8) = √2.
                    o["original_max_position_embeddings"] = 8;
                    o["rope_scaling"] = new JsonObject
                    {
                        ["type"] = "longrope",
                        ["short_factor"] = new JsonArray(1.0, 1.5, 2.0),
                        ["long_factor"] = new JsonArray(3.0, 5.0, 9.0),
                    };
                    break;
            }
        }, seed: 3);
        PerturbNorms(model, 4);
        long[] ids = variant == "longrope-short" ? [5, 17, 33, 2, 9, 41, 8, 60] : [5, 17, 33, 2, 9, 41, 8, 60, 61, 3, 14];
        using var _ = no_grad();
        using var output = model.Forward(tensor(ids).unsqueeze(0));
        var actual = output.Logits[0].to(ScalarType.Float64).log_softmax(-1);                 // (T, V)
        var tensors = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        var expected = HfReference.Logits(model.Config.Raw, tensors, ids).log_softmax(-1);   // (T, V)
        double diff = (actual - expected).abs().max().item<double>();
        Assert.True(diff < tolerance, $"{arch} {variant}: max |Δ log p| = {diff:E2}");
        // The reference is not trivially close: its log-probs spread over several nats.
        Assert.True(expected.std().item<double>() > 0.3);
    }

    [Theory]
    [InlineData("qwen3", "model.layers.1.self_attn.k_norm.weight", "model.layers.0.self_attn.q_proj.bias")]
    [InlineData("gemma2", "model.layers.0.pre_feedforward_layernorm.weight", "lm_head.bias")]
    [InlineData("gemma3", "model.layers.2.self_attn.q_norm.weight", "model.layers.0.self_attn.qkv_proj.weight")]
    [InlineData("phi3", "model.layers.1.mlp.gate_up_proj.weight", "model.layers.0.self_attn.q_proj.weight")]
    public void A_missing_or_an_extra_tensor_is_refused_with_its_name(string arch, string missing, string extra)
    {
        using var model = TinyModels.Create(arch);
        string dir = TinyModels.TempDir();
        Checkpoint.Save(model, dir);
        var path = Path.Combine(dir, Checkpoint.WeightsFile);
        var tensors = SafetensorsFile.Load(path);
        Assert.True(tensors.Remove(missing), $"{missing} is not in the saved checkpoint");
        SafetensorsFile.Save(path, tensors);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.Contains($"missing tensors: {missing}", e.Message);

        Checkpoint.Save(model, dir);
        tensors = SafetensorsFile.Load(path);
        tensors[extra] = zeros(4);
        SafetensorsFile.Save(path, tensors);
        e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.Contains($"unexpected tensors: {extra}", e.Message);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void Value_and_reward_heads_read_the_final_hidden_states_under_padding(string arch)
    {
        using var model = TinyModels.Create(arch);
        var value = new ValueHead(32, seed: 1);
        var reward = new RewardHead(32, seed: 4);
        using var _ = no_grad();
        using var alone = model.Forward(tensor(new long[] { 5, 6, 7, 8, 9, 10 }).unsqueeze(0));
        var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1 }).unsqueeze(0);
        using var left = model.Forward(tensor(new long[] { 0, 0, 5, 6, 7, 8, 9, 10 }).unsqueeze(0), mask);
        Assert.Equal(reward.forward(alone.HiddenStates, ones(1, 6)).item<float>(), reward.forward(left.HiddenStates, mask).item<float>(), 1e-5f);
        var v = value.forward(alone.HiddenStates);                                            // (1, 6)
        Assert.True(v.allclose(value.forward(left.HiddenStates).narrow(1, 2, 6), 1e-5, 1e-5));
    }

    [Fact]
    public void Longrope_cached_decoding_matches_recompute_below_the_original_context_and_is_refused_across_it()
    {
        using var model = Variant("phi3", o =>
        {
            o["original_max_position_embeddings"] = 12;
            o["rope_scaling"] = new JsonObject { ["type"] = "longrope", ["short_factor"] = new JsonArray(1.0, 1.5, 2.0), ["long_factor"] = new JsonArray(3.0, 5.0, 9.0) };
        });
        int[][] prompts = [[5, 17, 33, 2], [12, 3]];
        var below = new Rlft.Policy.Generation.GenerationOptions { MaxNewTokens = 7, Temperature = 0 };       // positions ≤ 10 < 12
        Assert.Equal(Rlft.Policy.Generation.TextGenerator.Generate(model, prompts, below, 0, 96).Tokens,
                     Rlft.Policy.Generation.TextGenerator.Generate(model, prompts, below with { UseKvCache = false }, 0, 96).Tokens);
        var across = below with { MaxNewTokens = 12 };
        var e = Assert.Throws<InvalidOperationException>(() => Rlft.Policy.Generation.TextGenerator.Generate(model, prompts, across, 0, 96));
        Assert.Contains("original_max_position_embeddings (12)", e.Message);
        Assert.Equal(2, Rlft.Policy.Generation.TextGenerator.Generate(model, prompts, across with { UseKvCache = false }, 0, 96).Tokens.Length);
    }

    public static TheoryData<string, string[]> LoraCases => new()
    {
        { "qwen3", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] },
        { "gemma2", ["q_proj", "v_proj", "down_proj"] },
        { "gemma3", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] },
        { "phi3", ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"] },
    };

    [Theory]
    [MemberData(nameof(LoraCases))]
    public void A_lora_dpo_step_changes_only_adapters_and_saves_peft_keys(string arch, string[] targets)
    {
        var policy = new PolicyModel(TinyModels.Create(arch, std: 0.05), new CharTokenizer());
        var adapters = LoraAdapters.Apply(policy.Model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = targets });
        Assert.Equal(targets.Length * policy.Model.Config.NumLayers, adapters.Layers.Count);
        var before = policy.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var opt = new OptimizerOptions { LearningRate = 1e-2, MaxGradNorm = 0, Schedule = LrSchedule.Constant };
        using var dpo = new DpoTrainer(policy, new AdapterReference(policy, adapters), new DpoOptions(), opt, adapters.Parameters());
        (string, string, string)[] data = [("a cat", " sat", " ran away"), ("the sky", " is blue", " is green today"), ("two", " plus two", " minus")];
        dpo.Step(data);
        dpo.Step(data);   // lora_A moves from the second step on (B starts at zero)
        foreach (var (name, p) in policy.Model.named_parameters())
        {
            if (name.Contains(".lora_")) Assert.False(p.detach().Equals(before[name]), $"{name} did not change");
            else Assert.True(p.detach().Equals(before[name]), $"{name} changed");
        }
        string dir = TinyModels.TempDir();
        adapters.Save(dir);
        var keys = SafetensorsFile.ReadHeader(Path.Combine(dir, LoraAdapters.WeightsFile)).Select(kv => kv.Key).ToList();
        string attn = arch == "phi3" ? "self_attn.qkv_proj" : "self_attn.q_proj";
        Assert.Contains($"base_model.model.model.layers.0.{attn}.lora_A.weight", keys);
        Assert.Contains($"base_model.model.model.layers.1.mlp.{(arch == "phi3" ? "gate_up_proj" : "down_proj")}.lora_B.weight", keys);
    }

    /// <summary>Characters to ids 2..91; enough for trainers that only need ids.</summary>
    sealed class CharTokenizer : ITokenizer
    {
        public int[] Encode(string text) => text.Select(c => 2 + c % 90).ToArray();
        public string Decode(IReadOnlyList<int> ids) => new(ids.Where(i => i >= 2 && i < 92).Select(i => (char)('a' + i % 26)).ToArray());
        public int EosId => 96;
        public int PadId => 0;
        public int? BosId => 1;
        public int VocabSize => TinyModels.Vocab;
    }
}
