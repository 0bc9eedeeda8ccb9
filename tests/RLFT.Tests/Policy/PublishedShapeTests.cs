using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>
/// The published shapes against the numbers in the published config.json files (written down here by hand, not read
/// from <see cref="PublishedShapes"/>), checked on the meta device so no 1.5B-parameter model is allocated; and the
/// streamed checkpoint writer against the in-memory initialisation it replaces.
/// </summary>
public class PublishedShapeTests
{
    /// <summary>
    /// config.json of openai-community/gpt2, Qwen/Qwen2-0.5B, Qwen/Qwen2-1.5B and meta-llama/Llama-3.2-1B: layers,
    /// hidden, heads, KV heads, head dim, MLP width, vocabulary, tied embeddings, and the parameter count of the model
    /// cards (tied matrix counted once).
    /// </summary>
    public static TheoryData<string, string, int, int, int, int, int, int, int, bool, long> Published => new()
    {
        { "gpt2-124m", "gpt2", 12, 768, 12, 12, 64, 3072, 50257, true, 124_439_808 },
        { "qwen2-0.5b", "qwen2", 24, 896, 14, 2, 64, 4864, 151936, true, 494_032_768 },
        { "qwen2-1.5b", "qwen2", 28, 1536, 12, 2, 128, 8960, 151936, true, 1_543_714_304 },
        { "llama3-1b", "llama", 16, 2048, 32, 8, 64, 8192, 128256, true, 1_235_814_400 },
    };

    [Theory]
    [MemberData(nameof(Published))]
    public void A_published_preset_has_the_published_shape_and_parameter_count(string preset, string modelType, int layers, int hidden,
        int heads, int kvHeads, int headDim, int mlp, int vocab, bool tied, long parameters)
    {
        var c = PublishedShapes.Config(preset, bosId: 1, eosId: 2, padId: 0);
        Assert.Equal((modelType, layers, hidden, heads, kvHeads, headDim, mlp, vocab, tied),
            (c.ModelType, c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKeyValueHeads, c.HeadDim, c.IntermediateSize, c.VocabSize, c.TieWordEmbeddings));
        Assert.Equal(modelType, ModelPresets.ResolveArchitecture(null, preset));

        using var meta = ModelFactory.CreateMeta(c);
        var shapes = meta.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.All(meta.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
        Assert.Equal(parameters, meta.ParameterCount());
        Assert.DoesNotContain("lm_head.weight", shapes.Keys);   // tied: the head reads the embedding matrix
        if (modelType == "gpt2")
        {
            Assert.Equal([vocab, hidden], shapes["transformer.wte.weight"]);
            Assert.Equal([1024, hidden], shapes["transformer.wpe.weight"]);
            Assert.Equal([hidden, 3 * hidden], shapes[$"transformer.h.{layers - 1}.attn.c_attn.weight"]);   // Conv1D (in, out)
            Assert.Equal([hidden, mlp], shapes["transformer.h.0.mlp.c_fc.weight"]);
            Assert.DoesNotContain($"transformer.h.{layers}.ln_1.weight", shapes.Keys);
        }
        else
        {
            Assert.Equal([vocab, hidden], shapes["model.embed_tokens.weight"]);
            Assert.Equal([heads * headDim, hidden], shapes[$"model.layers.{layers - 1}.self_attn.q_proj.weight"]);
            Assert.Equal([kvHeads * headDim, hidden], shapes["model.layers.0.self_attn.k_proj.weight"]);
            Assert.Equal([kvHeads * headDim, hidden], shapes["model.layers.0.self_attn.v_proj.weight"]);
            Assert.Equal([hidden, heads * headDim], shapes["model.layers.0.self_attn.o_proj.weight"]);
            Assert.Equal([mlp, hidden], shapes["model.layers.0.mlp.gate_proj.weight"]);
            Assert.Equal([hidden, mlp], shapes["model.layers.0.mlp.down_proj.weight"]);
            // Qwen2 has q/k/v biases and no o_proj bias; Llama 3 has none.
            Assert.Equal(modelType == "qwen2", shapes.ContainsKey("model.layers.0.self_attn.k_proj.bias"));
            Assert.DoesNotContain("model.layers.0.self_attn.o_proj.bias", shapes.Keys);
            Assert.DoesNotContain($"model.layers.{layers}.input_layernorm.weight", shapes.Keys);
        }
    }

    /// <summary>
    /// The newer families' shapes (Qwen/Qwen3-0.6B, google/gemma-3-1b-pt, microsoft/Phi-4-mini-instruct config.json):
    /// Qwen3's head_dim 128 ≠ 1024 / 16 with q/k norms, Gemma 3's single KV head of 256 and 262,144-token vocabulary,
    /// Phi-4-mini's fused projections; parameter counts as the model cards give them (0.6B with 0.44B non-embedding;
    /// 999,885,952; 3.8B).
    /// </summary>
    [Theory]
    [InlineData("qwen3-0.6b", "qwen3", 28, 1024, 16, 8, 128, 3072, 151936, 596_049_920)]
    [InlineData("gemma3-1b", "gemma3_text", 26, 1152, 4, 1, 256, 6912, 262144, 999_885_952)]
    [InlineData("phi4-mini", "phi3", 32, 3072, 24, 8, 128, 8192, 200064, 3_836_021_760)]
    public void The_newer_families_published_shapes(string preset, string modelType, int layers, int hidden, int heads, int kvHeads, int headDim,
        int mlp, int vocab, long parameters)
    {
        var c = PublishedShapes.Config(preset, bosId: 1, eosId: 2, padId: 0);
        Assert.Equal((modelType, layers, hidden, heads, kvHeads, headDim, mlp, vocab, true),
            (c.ModelType, c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKeyValueHeads, c.HeadDim, c.IntermediateSize, c.VocabSize, c.TieWordEmbeddings));
        using var meta = ModelFactory.CreateMeta(c);
        var shapes = meta.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(parameters, meta.ParameterCount());
        Assert.Equal([vocab, hidden], shapes["model.embed_tokens.weight"]);
        Assert.DoesNotContain("lm_head.weight", shapes.Keys);
        if (modelType == "phi3")
        {
            Assert.Equal([(heads + 2 * kvHeads) * headDim, hidden], shapes["model.layers.0.self_attn.qkv_proj.weight"]);
            Assert.Equal([2 * mlp, hidden], shapes["model.layers.0.mlp.gate_up_proj.weight"]);
        }
        else
        {
            Assert.Equal([heads * headDim, hidden], shapes["model.layers.0.self_attn.q_proj.weight"]);
            Assert.Equal([headDim], shapes["model.layers.0.self_attn.q_norm.weight"]);
            Assert.Equal([kvHeads * headDim, hidden], shapes["model.layers.0.self_attn.k_proj.weight"]);
        }
        if (modelType == "gemma3_text")
            Assert.Equal(Enumerable.Range(0, layers).Select(i => (i + 1) % 6 != 0).ToArray(), Enumerable.Range(0, layers).Select(c.IsSlidingLayer).ToArray());
    }

    [Fact]
    public void The_published_positions_rope_and_norms_are_kept()
    {
        var qwen = PublishedShapes.Config("qwen2-0.5b", 1, 2, 0);
        Assert.Equal((131072, 1_000_000.0, 1e-6), (qwen.MaxPositions, qwen.RopeTheta, qwen.NormEps));
        Assert.Null(qwen.SlidingWindow);   // use_sliding_window = false
        var llama = PublishedShapes.Config("llama3-1b", 1, 2, 0);
        Assert.Equal((131072, 500_000.0, 1e-5), (llama.MaxPositions, llama.RopeTheta, llama.NormEps));
        Assert.Equal("llama3", llama.RopeScaling!.Type);
        Assert.Equal(32.0, llama.RopeScaling.Factor);
        var gpt2 = PublishedShapes.Config("gpt2-124m", 1, 2, 0);
        Assert.Equal((1024, 1e-5, "gelu_new"), (gpt2.MaxPositions, gpt2.NormEps, gpt2.Raw["activation_function"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("qwen2-0.5b", "llama", "preset 'qwen2-0.5b' is a qwen2 model; it cannot be built as 'llama'")]
    [InlineData("tiny", null, "preset 'tiny' needs an architecture")]
    [InlineData("qwen2-7b", "qwen2", "unknown preset 'qwen2-7b'")]
    public void A_preset_and_architecture_that_do_not_go_together_are_refused(string preset, string? arch, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => ModelPresets.ResolveArchitecture(arch, preset));
        Assert.StartsWith(expected, e.Message);
    }

    [Theory]
    [InlineData("gpt2")]     // scaled c_proj init, tied head
    [InlineData("gemma2")]   // (1 + w) norms start at zero
    [InlineData("phi3")]     // fused projections
    public void The_streamed_writer_writes_the_weights_the_in_memory_initialisation_makes(string arch)
    {
        var config = ModelPresets.Config(arch, "tiny", vocabSize: 300, eosId: 1, padId: 0);
        string dir = Directory.CreateTempSubdirectory("rlft-streamed").FullName;
        try
        {
            Checkpoint.SaveInitialized(config, dir, seed: 5);
            using var expected = ModelFactory.CreateInitialized(config, seed: 5);
            using var written = Checkpoint.Load(dir, CPU);
            var reference = expected.state_dict();
            var loaded = written.state_dict();
            Assert.Equal(reference.Keys.Order(), loaded.Keys.Order());
            foreach (var (name, t) in reference) Assert.True(t.Equals(loaded[name]), $"{name} differs");
            Assert.False(File.Exists(Path.Combine(dir, Checkpoint.WeightsFile + ".part")));
        }
        finally { Directory.Delete(dir, true); }
    }
}
