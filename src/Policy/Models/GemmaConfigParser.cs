using System.Text.Json.Nodes;
using static Rlft.Policy.Models.ModelConfig;

namespace Rlft.Policy.Models;

/// <summary>
/// config.json of gemma2 and gemma3_text, with the defaults of transformers' Gemma2Config / Gemma3TextConfig:
/// head_dim 256, query_pre_attn_scalar 256, sliding_window 4096; gemma2 soft-caps attention at 50 and logits at 30
/// and alternates sliding and full layers (sliding first); gemma3 caps nothing, takes layer_types or else
/// sliding_window_pattern (6: five sliding layers, then a full one), and gives sliding layers their own RoPE base
/// rope_local_base_freq (10000) while full layers use rope_theta (1e6) and rope_scaling.
/// </summary>
static class GemmaConfigParser
{
    public static ModelConfig Parse(JsonObject o, string type)
    {
        bool g3 = type == "gemma3_text";
        string act = Str(o, "hidden_activation") ?? "gelu_pytorch_tanh";
        var activation = act switch
        {
            "gelu_pytorch_tanh" or "gelu_new" => Activation.GeluTanh,
            "gelu" => Activation.Gelu,
            _ => throw new InvalidDataException($"field 'hidden_activation' = {act} is not supported: implemented are gelu_pytorch_tanh, gelu_new, gelu"),
        };
        if (Bool(o, "use_bidirectional_attention") == true) Refuse("use_bidirectional_attention", "true", "decoder-only (causal) models only");
        int layers = Need(o, "num_hidden_layers");
        int heads = Int(o, "num_attention_heads") ?? 8;
        int kv = Int(o, "num_key_value_heads") ?? 4;
        if (heads % kv != 0) throw new InvalidDataException($"field 'num_key_value_heads' ({kv}) does not divide 'num_attention_heads' ({heads})");
        int headDim = Int(o, "head_dim") ?? 256;
        if (headDim % 2 != 0) throw new InvalidDataException($"field 'head_dim' ({headDim}) must be even for rotary embeddings");
        int? window = o.ContainsKey("sliding_window") ? Int(o, "sliding_window") : 4096;
        if (window is < 1) Refuse("sliding_window", window.ToString()!, "must be at least 1");

        double theta; JsonNode? scalingNode; double? localTheta = null;
        if (o["rope_parameters"] is JsonObject rp && rp["full_attention"] is JsonObject full && o["rope_scaling"] is null)
        {
            // transformers 5 writes one RoPE block per layer type.
            theta = Dbl(full, "rope_theta") ?? Dbl(o, "rope_theta") ?? (g3 ? 1_000_000.0 : 10000.0);
            scalingNode = full;
            if (rp["sliding_attention"] is JsonObject local)
            {
                string localType = Str(local, "rope_type") ?? "default";
                if (localType != "default") Refuse("rope_parameters.sliding_attention.rope_type", localType, "sliding layers use plain RoPE");
                localTheta = Dbl(local, "rope_theta");
            }
        }
        else (theta, scalingNode) = LlamaConfigParser.Rope(o, g3 ? 1_000_000.0 : 10000.0);
        if (g3) localTheta ??= Dbl(o, "rope_local_base_freq") ?? 10000.0;
        int maxPositions = Int(o, "max_position_embeddings") ?? (g3 ? 131_072 : 8192);

        bool attnBias = Bool(o, "attention_bias") ?? false;
        return new ModelConfig
        {
            ModelType = type,
            VocabSize = Need(o, "vocab_size"),
            HiddenSize = Need(o, "hidden_size"),
            NumLayers = layers,
            NumHeads = heads,
            NumKeyValueHeads = kv,
            HeadDim = headDim,
            RotaryDim = headDim,
            IntermediateSize = Need(o, "intermediate_size"),
            MaxPositions = maxPositions,
            NormEps = Dbl(o, "rms_norm_eps") ?? 1e-6,
            RopeTheta = theta,
            RopeScaling = RopeScaling.Parse(scalingNode, maxPositions),
            TieWordEmbeddings = Bool(o, "tie_word_embeddings") ?? true,
            AttentionBias = attnBias,
            OutputProjectionBias = attnBias,
            Activation = activation,
            QkNorm = g3,
            SlidingWindow = window,
            SlidingLayers = window is null ? null : LayerTypes(o, layers, g3),
            QueryPreAttnScalar = Dbl(o, "query_pre_attn_scalar") ?? 256,
            AttnLogitSoftcap = o.ContainsKey("attn_logit_softcapping") ? Dbl(o, "attn_logit_softcapping") : (g3 ? null : 50.0),
            FinalLogitSoftcap = o.ContainsKey("final_logit_softcapping") ? Dbl(o, "final_logit_softcapping") : (g3 ? null : 30.0),
            LocalRopeTheta = localTheta,
            BosTokenId = Int(o, "bos_token_id"),
            EosTokenId = Int(o, "eos_token_id"),
            PadTokenId = Int(o, "pad_token_id"),
            Raw = o,
        };
    }

    /// <summary>Which layers slide: layer_types when given, else gemma2's alternation or gemma3's sliding_window_pattern.</summary>
    static bool[] LayerTypes(JsonObject o, int layers, bool g3)
    {
        if (o["layer_types"] is JsonArray a)
        {
            if (a.Count != layers) throw new InvalidDataException($"field 'layer_types' has {a.Count} entries, expected num_hidden_layers = {layers}");
            return a.Select((x, i) => (x as JsonValue)?.TryGetValue<string>(out var s) == true ? s switch
            {
                "sliding_attention" => true,
                "full_attention" => false,
                _ => throw new InvalidDataException($"field 'layer_types[{i}]' = {s} is not supported: expected sliding_attention or full_attention"),
            } : throw new InvalidDataException($"field 'layer_types[{i}]' must be a string")).ToArray();
        }
        if (o["layer_types"] is not null) throw new InvalidDataException("field 'layer_types' must be a list");
        // Gemma2Config: sliding when (i + 1) % 2 != 0; Gemma3TextConfig: when (i + 1) % sliding_window_pattern != 0.
        int pattern = g3 ? Int(o, "sliding_window_pattern") ?? 6 : 2;
        if (pattern < 1) Refuse("sliding_window_pattern", pattern.ToString(), "must be at least 1");
        return Enumerable.Range(0, layers).Select(i => (i + 1) % pattern != 0).ToArray();
    }

    /// <summary>The gemma fields of config.json, written back as this config reads them.</summary>
    public static void Write(ModelConfig c, JsonObject o)
    {
        o["hidden_activation"] ??= c.Activation == Activation.Gelu ? "gelu" : "gelu_pytorch_tanh";
        o["query_pre_attn_scalar"] = c.QueryPreAttnScalar;
        o["sliding_window"] = c.SlidingWindow;
        if (c.SlidingLayers is not null)
            o["layer_types"] = new JsonArray(c.SlidingLayers.Select(s => (JsonNode)JsonValue.Create(s ? "sliding_attention" : "full_attention")!).ToArray());
        o["attn_logit_softcapping"] = c.AttnLogitSoftcap;
        o["final_logit_softcapping"] = c.FinalLogitSoftcap;
        if (c.LocalRopeTheta is double local && o["rope_parameters"] is null) o["rope_local_base_freq"] = local;
    }
}
