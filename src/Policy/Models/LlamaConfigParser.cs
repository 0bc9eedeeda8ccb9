using System.Globalization;
using System.Text.Json.Nodes;
using static Rlft.Policy.Models.ModelConfig;

namespace Rlft.Policy.Models;

/// <summary>
/// config.json of the Llama-shaped families: llama, mistral, qwen2, qwen3 and phi3. Defaults are those of each
/// transformers config class (e.g. Qwen3Config's head_dim 128, Phi3Config's rms_norm_eps 1e-5).
/// </summary>
static class LlamaConfigParser
{
    public static ModelConfig Parse(JsonObject o, string type)
    {
        string act = Str(o, "hidden_act") ?? "silu";
        if (act != "silu") Refuse("hidden_act", act, "only silu (SwiGLU) is implemented");
        if ((Int(o, "pretraining_tp") ?? 1) != 1) Refuse("pretraining_tp", Int(o, "pretraining_tp").ToString()!, "only 1 is implemented");
        int hidden = Need(o, "hidden_size");
        int heads = Need(o, "num_attention_heads");
        int kv = Int(o, "num_key_value_heads") ?? (type == "qwen3" ? 32 : heads);
        if (heads % kv != 0) throw new InvalidDataException($"field 'num_key_value_heads' ({kv}) does not divide 'num_attention_heads' ({heads})");
        int headDim = Int(o, "head_dim") ?? (type == "qwen3" ? 128 : hidden / heads);
        if (o["head_dim"] is null && type != "qwen3" && hidden % heads != 0)
            throw new InvalidDataException($"field 'hidden_size' ({hidden}) is not divisible by 'num_attention_heads' ({heads})");
        var (theta, scalingNode) = Rope(o, 10000.0);

        // Only phi3 rotates part of each head; transformers' rotary dim is int(head_dim × factor).
        double prf = Dbl(o, "partial_rotary_factor") ?? (scalingNode as JsonObject is { } rp ? Dbl(rp, "partial_rotary_factor") : null) ?? 1.0;
        if (type != "phi3" && prf != 1.0) Refuse("partial_rotary_factor", prf.ToString(CultureInfo.InvariantCulture), $"only phi3 rotates part of each head");
        if (!(prf > 0 && prf <= 1)) Refuse("partial_rotary_factor", prf.ToString(CultureInfo.InvariantCulture), "must be in (0, 1]");
        int rotaryDim = (int)(headDim * prf);
        if (rotaryDim % 2 != 0 || rotaryDim == 0)
            throw new InvalidDataException($"field 'head_dim' ({headDim}) × 'partial_rotary_factor' ({prf.ToString(CultureInfo.InvariantCulture)}) = {rotaryDim} must be a positive even number for rotary embeddings");

        int maxPositions = Int(o, "max_position_embeddings") ?? type switch { "phi3" => 4096, "qwen3" => 32768, _ => 2048 };
        int? originalMax = type == "phi3" ? Int(o, "original_max_position_embeddings") ?? 4096 : null;
        var scaling = RopeScaling.Parse(scalingNode, maxPositions, originalMax, rotaryDim, phi3Names: type == "phi3");

        int? window = null;
        if (type is "mistral" or "phi3") window = Int(o, "sliding_window");
        if (type is "qwen2" or "qwen3" && Bool(o, "use_sliding_window") == true)
            Refuse("use_sliding_window", "true", $"sliding-window attention is not implemented for {type}");
        if (type is "qwen2" or "qwen3" && o["layer_types"] is JsonArray lt && lt.Any(x => x?.GetValue<string>() != "full_attention"))
            Refuse("layer_types", lt.ToJsonString(), $"only full_attention layers are implemented for {type}");

        bool attnBias = type switch
        {
            "qwen2" => true,                                    // q/k/v biases, no o_proj bias
            "phi3" => false,                                    // Phi3Attention has no biases
            _ => Bool(o, "attention_bias") ?? false,            // llama, mistral, qwen3: q/k/v/o together
        };
        return new ModelConfig
        {
            ModelType = type,
            VocabSize = Need(o, "vocab_size"),
            HiddenSize = hidden,
            NumLayers = Need(o, "num_hidden_layers"),
            NumHeads = heads,
            NumKeyValueHeads = kv,
            HeadDim = headDim,
            RotaryDim = rotaryDim,
            IntermediateSize = Need(o, "intermediate_size"),
            MaxPositions = maxPositions,
            NormEps = Dbl(o, "rms_norm_eps") ?? (type == "phi3" ? 1e-5 : 1e-6),
            RopeTheta = theta,
            RopeScaling = scaling,
            TieWordEmbeddings = Bool(o, "tie_word_embeddings") ?? false,
            AttentionBias = attnBias,
            OutputProjectionBias = type is not ("qwen2" or "phi3") && attnBias,
            MlpBias = type == "llama" && (Bool(o, "mlp_bias") ?? false),
            QkNorm = type == "qwen3",
            SlidingWindow = window,
            BosTokenId = Int(o, "bos_token_id"),
            EosTokenId = Int(o, "eos_token_id"),
            PadTokenId = Int(o, "pad_token_id"),
            Raw = o,
        };
    }

    /// <summary>
    /// rope_theta and rope_scaling, or the single <c>rope_parameters</c> object that transformers 5 writes instead
    /// (its rope_type "default" means no scaling).
    /// </summary>
    internal static (double Theta, JsonNode? Scaling) Rope(JsonObject o, double defaultTheta)
    {
        if (o["rope_parameters"] is JsonObject rp && o["rope_scaling"] is null)
            return (Dbl(rp, "rope_theta") ?? Dbl(o, "rope_theta") ?? defaultTheta, rp);
        return (Dbl(o, "rope_theta") ?? defaultTheta, o["rope_scaling"]);
    }
}
