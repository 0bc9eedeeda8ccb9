using System.Text.Json.Nodes;
using Rlft.Policy.Models;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

public class ArchitectureTests
{
    static Dictionary<string, long[]> Layout(CausalLM model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);

    static void AssertLayout(Dictionary<string, long[]> expected, CausalLM model)
    {
        var actual = Layout(model);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (k, shape) in expected) Assert.True(shape.SequenceEqual(actual[k]), $"{k}: expected [{string.Join(",", shape)}], got [{string.Join(",", actual[k])}]");
    }

    [Fact]
    public void Gpt2_parameters_have_transformers_names_and_conv1d_shapes()
    {
        using var model = TinyModels.Create("gpt2");
        var e = new Dictionary<string, long[]>
        {
            ["transformer.wte.weight"] = [97, 32], ["transformer.wpe.weight"] = [64, 32],
            ["transformer.ln_f.weight"] = [32], ["transformer.ln_f.bias"] = [32],
        };
        for (int i = 0; i < 2; i++)
        {
            string p = $"transformer.h.{i}.";
            e[p + "ln_1.weight"] = [32]; e[p + "ln_1.bias"] = [32]; e[p + "ln_2.weight"] = [32]; e[p + "ln_2.bias"] = [32];
            e[p + "attn.c_attn.weight"] = [32, 96]; e[p + "attn.c_attn.bias"] = [96];
            e[p + "attn.c_proj.weight"] = [32, 32]; e[p + "attn.c_proj.bias"] = [32];
            e[p + "mlp.c_fc.weight"] = [32, 128]; e[p + "mlp.c_fc.bias"] = [128];
            e[p + "mlp.c_proj.weight"] = [128, 32]; e[p + "mlp.c_proj.bias"] = [32];
        }
        AssertLayout(e, model);
    }

    [Theory]
    [InlineData("llama", 8, 2, 64, false, false)]
    [InlineData("qwen2", 8, 1, 48, true, true)]
    [InlineData("mistral", 16, 2, 64, false, false)]
    public void Llama_family_parameters_have_transformers_names_and_shapes(string arch, int headDim, int kv, int inter, bool qkvBias, bool tied)
    {
        using var model = TinyModels.Create(arch);
        var e = new Dictionary<string, long[]> { ["model.embed_tokens.weight"] = [97, 32], ["model.norm.weight"] = [32] };
        if (!tied) e["lm_head.weight"] = [97, 32];
        for (int i = 0; i < 2; i++)
        {
            string p = $"model.layers.{i}.";
            e[p + "self_attn.q_proj.weight"] = [4 * headDim, 32];
            e[p + "self_attn.k_proj.weight"] = [kv * headDim, 32];
            e[p + "self_attn.v_proj.weight"] = [kv * headDim, 32];
            e[p + "self_attn.o_proj.weight"] = [32, 4 * headDim];
            if (qkvBias) { e[p + "self_attn.q_proj.bias"] = [4 * headDim]; e[p + "self_attn.k_proj.bias"] = [kv * headDim]; e[p + "self_attn.v_proj.bias"] = [kv * headDim]; }
            e[p + "mlp.gate_proj.weight"] = [inter, 32]; e[p + "mlp.up_proj.weight"] = [inter, 32]; e[p + "mlp.down_proj.weight"] = [32, inter];
            e[p + "input_layernorm.weight"] = [32]; e[p + "post_attention_layernorm.weight"] = [32];
        }
        AssertLayout(e, model);
    }

    [Theory]
    [InlineData("{\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":8,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}", "rope_scaling")]
    [InlineData("{\"model_type\":\"qwen2\",\"vocab_size\":10,\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":8,\"use_sliding_window\":true}", "use_sliding_window")]
    [InlineData("{\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":8,\"hidden_act\":\"gelu\"}", "hidden_act")]
    [InlineData("{\"model_type\":\"gpt2\",\"vocab_size\":10,\"n_embd\":8,\"n_layer\":1,\"n_head\":2,\"n_positions\":8,\"activation_function\":\"relu\"}", "activation_function")]
    [InlineData("{\"model_type\":\"gpt2\",\"vocab_size\":10,\"n_embd\":8,\"n_layer\":1,\"n_head\":2,\"n_positions\":8,\"scale_attn_by_inverse_layer_idx\":true}", "scale_attn_by_inverse_layer_idx")]
    [InlineData("{\"model_type\":\"falcon\"}", "model_type")]
    [InlineData("{\"model_type\":\"llama\",\"vocab_size\":10,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":8}", "hidden_size")]
    public void Unsupported_or_missing_config_fields_are_refused_by_name(string json, string field)
    {
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Parse((JsonObject)JsonNode.Parse(json)!));
        Assert.Contains($"'{field}", e.Message);
    }

    [Fact]
    public void Mistral_sliding_window_hides_keys_older_than_the_window()
    {
        // Window 2, two layers: the last position sees positions 3..4 in layer 2, which saw 2..4 in layer 1.
        var o = (JsonObject)TinyModels.Config("mistral").ToJson();
        o["sliding_window"] = 2;
        using var model = ModelFactory.Create(ModelConfig.Parse(o));
        model.InitWeights(3, 0.2);
        model.eval();
        using var _ = no_grad();
        using var a = model.Forward(tensor(new long[] { 1, 2, 3, 4, 5 }).unsqueeze(0));
        using var b = model.Forward(tensor(new long[] { 9, 8, 3, 4, 5 }).unsqueeze(0));
        Assert.True(a.Logits[0, -1].allclose(b.Logits[0, -1], 1e-5, 1e-5));
        using var c = model.Forward(tensor(new long[] { 1, 2, 9, 4, 5 }).unsqueeze(0));
        Assert.False(a.Logits[0, -1].allclose(c.Logits[0, -1], 1e-5, 1e-5));
    }
}
