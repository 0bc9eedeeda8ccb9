using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

public class CheckpointTests
{
    // A fresh tensor per use: a static one would die with whichever dispose scope first touched it.
    static Tensor Ids => tensor(new long[] { 4, 8, 15, 16, 23, 42 }).unsqueeze(0);

    static Tensor Logits(CausalLM model)
    {
        using var _ = no_grad();
        using var o = model.Forward(Ids);
        return o.Logits.clone();
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void Save_then_load_is_bit_exact_and_writes_the_pt_format_metadata(string arch)
    {
        using var model = TinyModels.Create(arch);
        string dir = TinyModels.TempDir();
        Checkpoint.Save(model, dir);
        using var loaded = Checkpoint.Load(dir);
        var a = model.state_dict(); var b = loaded.state_dict();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, t) in a) Assert.True(t.Equals(b[k]), k);
        Assert.True(Logits(model).Equals(Logits(loaded)));
        var header = SafetensorsFile.ReadHeader(Path.Combine(dir, Checkpoint.WeightsFile));
        Assert.Equal("pt", header["__metadata__"]?["format"]?.GetValue<string>());
        Assert.Equal(arch == "gemma3" ? "gemma3_text" : arch, ModelConfig.Load(Path.Combine(dir, "config.json")).ModelType);
        // The same key layout as the model (and transformers): every saved key is a parameter name, nothing else.
        Assert.Equal(a.Keys.Order(), header.Select(kv => kv.Key).Where(k => k != "__metadata__").Order());
    }

    static string Rewrite(CausalLM model, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> edit)
    {
        string dir = TinyModels.TempDir();
        Checkpoint.Save(model, dir);
        var path = Path.Combine(dir, Checkpoint.WeightsFile);
        var tensors = SafetensorsFile.Load(path);
        SafetensorsFile.Save(path, edit(tensors));
        return dir;
    }

    [Fact]
    public void A_missing_tensor_is_refused_with_its_name()
    {
        using var model = TinyModels.Create("llama");
        string dir = Rewrite(model, t => { t.Remove("model.layers.1.mlp.up_proj.weight"); return t; });
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.Contains("missing tensors: model.layers.1.mlp.up_proj.weight", e.Message);
    }

    [Fact]
    public void A_wrong_shape_or_an_unknown_tensor_is_refused_with_its_name()
    {
        using var model = TinyModels.Create("gpt2");
        string dir = Rewrite(model, t =>
        {
            t["transformer.h.0.attn.c_attn.weight"] = zeros(96, 32);
            t["transformer.h.0.attn.surprise"] = zeros(3);
            return t;
        });
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.Contains("transformer.h.0.attn.c_attn.weight (checkpoint [96, 32], model [32, 96])", e.Message);
        Assert.Contains("unexpected tensors: transformer.h.0.attn.surprise", e.Message);
    }

    [Fact]
    public void Gpt2_checkpoints_without_prefix_in_bf16_with_mask_buffers_load()
    {
        using var model = TinyModels.Create("gpt2");
        string dir = Rewrite(model, t =>
        {
            var d = t.ToDictionary(kv => kv.Key.Replace("transformer.", ""), kv => kv.Value.to(ScalarType.BFloat16));
            d["h.0.attn.bias"] = ones(1, 1, 64, 64);
            d["h.1.attn.masked_bias"] = tensor(-1e4f);
            d["lm_head.weight"] = t["transformer.wte.weight"];
            return d;
        });
        using var loaded = Checkpoint.Load(dir);
        var expected = model.state_dict()["transformer.h.1.mlp.c_fc.weight"].to(ScalarType.BFloat16).to(ScalarType.Float32);
        Assert.True(expected.Equals(loaded.state_dict()["transformer.h.1.mlp.c_fc.weight"]));
        Assert.Equal(ScalarType.Float32, loaded.WordEmbeddings.dtype);
    }

    [Fact]
    public void Sharded_checkpoints_load_through_the_index()
    {
        using var model = TinyModels.Create("llama");
        string dir = TinyModels.TempDir();
        Checkpoint.Save(model, dir);
        var all = SafetensorsFile.Load(Path.Combine(dir, Checkpoint.WeightsFile));
        File.Delete(Path.Combine(dir, Checkpoint.WeightsFile));
        var keys = all.Keys.Order().ToList();
        var first = keys.Take(keys.Count / 2).ToHashSet();
        SafetensorsFile.Save(Path.Combine(dir, "model-00001-of-00002.safetensors"), all.Where(kv => first.Contains(kv.Key)).ToDictionary());
        SafetensorsFile.Save(Path.Combine(dir, "model-00002-of-00002.safetensors"), all.Where(kv => !first.Contains(kv.Key)).ToDictionary());
        var map = new JsonObject();
        foreach (var k in keys) map[k] = first.Contains(k) ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
        File.WriteAllText(Path.Combine(dir, Checkpoint.IndexFile), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
        using var loaded = Checkpoint.Load(dir);
        Assert.True(Logits(model).Equals(Logits(loaded)));
    }
}
