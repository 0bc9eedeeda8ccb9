using System.Text.Json.Nodes;
using Rlft.Policy.Models;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>config.json of the new families: transformers' defaults, refusals by field name, published layouts.</summary>
public class FamilyConfigTests
{
    static ModelConfig Parse(string json) => ModelConfig.Parse((JsonObject)JsonNode.Parse(json)!);

    [Fact]
    public void Defaults_follow_the_transformers_config_classes()
    {
        var g2 = Parse("""{"model_type":"gemma2","vocab_size":10,"hidden_size":16,"num_hidden_layers":4,"intermediate_size":8}""");
        Assert.Equal((50.0, 30.0), (g2.AttnLogitSoftcap, g2.FinalLogitSoftcap));
        Assert.Equal(new[] { true, false, true, false }, g2.SlidingLayers);              // (i + 1) % 2 != 0
        Assert.Equal((256, 8, 4, 4096, 10000.0), (g2.HeadDim, g2.NumHeads, g2.NumKeyValueHeads, g2.SlidingWindow!.Value, g2.RopeTheta));
        Assert.Equal((256.0, true, Activation.GeluTanh), (g2.QueryPreAttnScalar!.Value, g2.TieWordEmbeddings, g2.Activation));
        Assert.Null(g2.LocalRopeTheta);

        var g3 = Parse("""{"model_type":"gemma3_text","vocab_size":10,"hidden_size":16,"num_hidden_layers":12,"intermediate_size":8,"sliding_window":512}""");
        Assert.Null(g3.AttnLogitSoftcap); Assert.Null(g3.FinalLogitSoftcap);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => i != 5 && i != 11), g3.SlidingLayers!);   // sliding_window_pattern 6
        Assert.Equal((1_000_000.0, 10000.0, true), (g3.RopeTheta, g3.LocalRopeTheta!.Value, g3.QkNorm));

        var q3 = Parse("""{"model_type":"qwen3","vocab_size":10,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":32,"intermediate_size":8}""");
        Assert.Equal((128, 32, true, false, false), (q3.HeadDim, q3.NumKeyValueHeads, q3.QkNorm, q3.AttentionBias, q3.TieWordEmbeddings));

        var phi = Parse("""{"model_type":"phi3","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"partial_rotary_factor":0.75}""");
        Assert.Equal((1e-5, 8, 6, 4096), (phi.NormEps, phi.HeadDim, phi.RotaryDim, phi.MaxPositions));
        Assert.Null(phi.RopeScaling); Assert.Null(phi.SlidingWindow);
    }

    [Fact]
    public void Phi3_longrope_takes_its_factor_from_the_context_extension_and_transformers_5_rope_parameters_are_read()
    {
        var phi = Parse("""
            {"model_type":"phi3","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,
             "max_position_embeddings":131072,"original_max_position_embeddings":4096,"partial_rotary_factor":0.75,
             "rope_scaling":{"type":"longrope","short_factor":[1,1,1],"long_factor":[2,3,4]}}
            """);
        Assert.Equal("longrope", phi.RopeScaling!.Type);
        Assert.Equal(32.0, phi.RopeScaling.Factor);
        Assert.Equal(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), phi.RopeScaling.AttentionFactor, 12);
        var q3 = Parse("""{"model_type":"qwen3","vocab_size":10,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":2,"head_dim":8,"intermediate_size":8,"rope_parameters":{"rope_type":"default","rope_theta":5000.0}}""");
        Assert.Equal(5000.0, q3.RopeTheta);
        Assert.Null(q3.RopeScaling);
        var g3 = Parse("""{"model_type":"gemma3_text","vocab_size":10,"hidden_size":16,"num_hidden_layers":2,"intermediate_size":8,"rope_parameters":{"full_attention":{"rope_type":"linear","factor":8.0,"rope_theta":1000000.0},"sliding_attention":{"rope_type":"default","rope_theta":10000.0}}}""");
        Assert.Equal(("linear", 8.0, 10000.0), (g3.RopeScaling!.Type, g3.RopeScaling.Factor, g3.LocalRopeTheta!.Value));
    }

    [Theory]
    [InlineData("""{"model_type":"phi3","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,"rope_scaling":{"rope_type":"dynamic","factor":2}}""", "rope_scaling.rope_type")]
    [InlineData("""{"model_type":"phi3","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,"rope_scaling":{"type":"longrope","short_factor":[1],"long_factor":[1,2]}}""", "rope_scaling.short_factor")]
    [InlineData("""{"model_type":"qwen3","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":2,"intermediate_size":8,"use_sliding_window":true}""", "use_sliding_window")]
    [InlineData("""{"model_type":"qwen3","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":2,"intermediate_size":8,"partial_rotary_factor":0.5}""", "partial_rotary_factor")]
    [InlineData("""{"model_type":"gemma3_text","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"intermediate_size":8,"hidden_activation":"relu"}""", "hidden_activation")]
    [InlineData("""{"model_type":"gemma3_text","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"intermediate_size":8,"use_bidirectional_attention":true}""", "use_bidirectional_attention")]
    [InlineData("""{"model_type":"gemma3_text","vocab_size":10,"hidden_size":8,"num_hidden_layers":2,"intermediate_size":8,"layer_types":["sliding_attention"]}""", "layer_types")]
    [InlineData("""{"model_type":"gemma2","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"intermediate_size":8,"rope_scaling":{"rope_type":"yarn","factor":2}}""", "rope_scaling.rope_type")]
    [InlineData("""{"model_type":"gemma3","text_config":{}}""", "model_type")]
    public void Unimplemented_options_of_the_new_families_are_refused_by_name(string json, string field)
    {
        var e = Assert.Throws<InvalidDataException>(() => Parse(json));
        Assert.Contains($"'{field}", e.Message);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void Config_round_trips_through_to_json(string arch)
    {
        var a = TinyModels.Config(arch);
        var b = ModelConfig.Parse(a.ToJson());
        Assert.Equal(a.ToJson().ToJsonString(), b.ToJson().ToJsonString());
        Assert.Equal((a.ModelType, a.HeadDim, a.RotaryDim, a.SlidingWindow, a.QkNorm), (b.ModelType, b.HeadDim, b.RotaryDim, b.SlidingWindow, b.QkNorm));
        Assert.Equal(a.SlidingLayers, b.SlidingLayers);
        Assert.Equal((a.QueryPreAttnScalar, a.AttnLogitSoftcap, a.FinalLogitSoftcap, a.LocalRopeTheta), (b.QueryPreAttnScalar, b.AttnLogitSoftcap, b.FinalLogitSoftcap, b.LocalRopeTheta));
    }
}

/// <summary>Runs alone: it switches the process's default device to meta, so modules of published sizes cost no memory.</summary>
public class PublishedLayoutTests
{
    /// <summary>The config.json fields of published checkpoints that decide their tensor shapes.</summary>
    public static TheoryData<string, string> Published => new()
    {
        { "Qwen3-0.6B", """{"model_type":"qwen3","vocab_size":151936,"hidden_size":1024,"intermediate_size":3072,"num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,"max_position_embeddings":40960,"rope_theta":1000000,"tie_word_embeddings":true}""" },
        { "gemma-3-1b", """{"model_type":"gemma3_text","vocab_size":262144,"hidden_size":1152,"intermediate_size":6912,"num_hidden_layers":26,"num_attention_heads":4,"num_key_value_heads":1,"head_dim":256,"max_position_embeddings":32768,"query_pre_attn_scalar":256,"sliding_window":512,"sliding_window_pattern":6,"rope_theta":1000000,"rope_local_base_freq":10000,"final_logit_softcapping":null,"attn_logit_softcapping":null}""" },
        { "gemma-2-2b", """{"model_type":"gemma2","vocab_size":256000,"hidden_size":2304,"intermediate_size":9216,"num_hidden_layers":26,"num_attention_heads":8,"num_key_value_heads":4,"head_dim":256,"query_pre_attn_scalar":256,"sliding_window":4096}""" },
        { "Phi-4-mini", """{"model_type":"phi3","vocab_size":200064,"hidden_size":3072,"intermediate_size":8192,"num_hidden_layers":32,"num_attention_heads":24,"num_key_value_heads":8,"max_position_embeddings":131072,"original_max_position_embeddings":4096,"partial_rotary_factor":0.75,"tie_word_embeddings":true,"sliding_window":262144}""" },
    };

    [Theory]
    [MemberData(nameof(Published))]
    public void Parameter_names_and_shapes_are_those_of_the_transformers_checkpoint(string name, string json)
    {
        var config = ModelConfig.Parse((JsonObject)JsonNode.Parse(json)!);
        Dictionary<string, long[]> actual;
        using (var model = ModelFactory.CreateMeta(config))
        {
            // Built on the meta device: names and shapes only, not the published model's gigabytes.
            Assert.All(model.parameters(), p => Assert.Equal(TorchSharp.DeviceType.META, p.device_type));
            actual = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        }

        // Written out from each modeling file's __init__ (transformers), with the published sizes.
        var c = config; long h = c.HiddenSize, d = c.HeadDim, nh = c.NumHeads, kv = c.NumKeyValueHeads, i = c.IntermediateSize;
        var e = new Dictionary<string, long[]> { ["model.embed_tokens.weight"] = [c.VocabSize, h], ["model.norm.weight"] = [h] };
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            e[p + "input_layernorm.weight"] = [h]; e[p + "post_attention_layernorm.weight"] = [h];
            e[p + "self_attn.o_proj.weight"] = [h, nh * d];
            e[p + "mlp.down_proj.weight"] = [h, i];
            if (c.ModelType == "phi3")
            {
                e[p + "self_attn.qkv_proj.weight"] = [(nh + 2 * kv) * d, h];
                e[p + "mlp.gate_up_proj.weight"] = [2 * i, h];
                continue;
            }
            e[p + "self_attn.q_proj.weight"] = [nh * d, h]; e[p + "self_attn.k_proj.weight"] = [kv * d, h]; e[p + "self_attn.v_proj.weight"] = [kv * d, h];
            e[p + "mlp.gate_proj.weight"] = [i, h]; e[p + "mlp.up_proj.weight"] = [i, h];
            if (c.ModelType is "qwen3" or "gemma3_text") { e[p + "self_attn.q_norm.weight"] = [d]; e[p + "self_attn.k_norm.weight"] = [d]; }
            if (c.Family == ModelFamily.Gemma) { e[p + "pre_feedforward_layernorm.weight"] = [h]; e[p + "post_feedforward_layernorm.weight"] = [h]; }
        }
        Assert.Equal(e.Keys.Order(), actual.Keys.Order());
        foreach (var (k, shape) in e) Assert.True(shape.SequenceEqual(actual[k]), $"{name} {k}: expected [{string.Join(",", shape)}], got [{string.Join(",", actual[k])}]");
        // Spot checks against the published numbers themselves, independent of the loop above.
        (string spotKey, long[] spotShape) = name switch
        {
            "Qwen3-0.6B" => ("model.layers.27.self_attn.q_proj.weight", new long[] { 2048, 1024 }),
            "gemma-3-1b" => ("model.layers.25.self_attn.k_proj.weight", [256, 1152]),
            "gemma-2-2b" => ("model.layers.0.mlp.gate_proj.weight", [9216, 2304]),
            _ => ("model.layers.31.self_attn.qkv_proj.weight", [5120, 3072]),
        };
        Assert.Equal(spotShape, actual[spotKey]);
    }
}
