using System.Text.Json.Nodes;

namespace Rlft.Policy.Models;

/// <summary>
/// <c>rope_scaling</c> from config.json: only the types implemented in <see cref="RotaryEmbedding"/> are accepted
/// (linear, llama3, longrope); any other is refused with the field's name.
/// </summary>
/// <param name="Type">linear | llama3 | longrope.</param>
/// <param name="Factor">linear and llama3: the slow-down factor; longrope: the context extension factor.</param>
/// <param name="ShortFactor">longrope: per-frequency divisors used while every position is below <see cref="OriginalMaxPositions"/>.</param>
/// <param name="LongFactor">longrope: the divisors used once a position reaches it.</param>
/// <param name="AttentionFactor">longrope: cos and sin are multiplied by this (√(1 + ln factor / ln original) when not given).</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions,
    double[]? ShortFactor = null, double[]? LongFactor = null, double AttentionFactor = 1.0)
{
    /// <summary>
    /// Reads <c>rope_scaling</c>. <paramref name="maxPositions"/> and <paramref name="originalMaxPositions"/> are the
    /// config's <c>max_position_embeddings</c> and <c>original_max_position_embeddings</c> (Phi-3 keeps the latter at
    /// the top level), which longrope uses for its default factors; <paramref name="rotaryDim"/> checks the factor lists.
    /// </summary>
    internal static RopeScaling? Parse(JsonNode? node, int maxPositions = 0, int? originalMaxPositions = null, int rotaryDim = 0, bool phi3Names = false)
    {
        if (node is null) return null;
        if (node is not JsonObject o) throw new InvalidDataException("field 'rope_scaling' must be an object or null");
        string type = ModelConfig.Str(o, "rope_type") ?? ModelConfig.Str(o, "type") ?? "default";
        // transformers reads Phi-3's older names "su" and "yarn" as longrope (Phi3Config.convert_rope_params_to_dict).
        if (phi3Names && (type is "su" or "yarn")) type = "longrope";
        return type switch
        {
            "default" => null,
            "linear" => new RopeScaling(type, NeedFactor(o), 0, 0, 0),
            "llama3" => new RopeScaling(type, NeedFactor(o),
                ModelConfig.Dbl(o, "low_freq_factor") ?? 1.0,
                ModelConfig.Dbl(o, "high_freq_factor") ?? 4.0,
                ModelConfig.Int(o, "original_max_position_embeddings") ?? 8192),
            "longrope" => LongRope(o, maxPositions, originalMaxPositions, rotaryDim),
            _ => throw new InvalidDataException($"field 'rope_scaling.rope_type' = {type} is not supported: implemented are default, linear, llama3, longrope"),
        };
    }

    static double NeedFactor(JsonObject o) => ModelConfig.Dbl(o, "factor") ?? throw new InvalidDataException("field 'rope_scaling.factor' is missing");

    // transformers' _compute_longrope_parameters: factor defaults to max / original positions, and the attention
    // factor to √(1 + ln factor / ln original) (1 when factor ≤ 1).
    static RopeScaling LongRope(JsonObject o, int maxPositions, int? topLevelOriginal, int rotaryDim)
    {
        int original = ModelConfig.Int(o, "original_max_position_embeddings") ?? topLevelOriginal
                       ?? throw new InvalidDataException("field 'original_max_position_embeddings' is missing (longrope needs it)");
        var shortF = Factors(o, "short_factor", rotaryDim);
        var longF = Factors(o, "long_factor", rotaryDim);
        double factor = ModelConfig.Dbl(o, "factor") ?? (double)maxPositions / original;
        double attention = ModelConfig.Dbl(o, "attention_factor")
                           ?? (factor <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
        return new RopeScaling("longrope", factor, 0, 0, original, shortF, longF, attention);
    }

    static double[] Factors(JsonObject o, string key, int rotaryDim)
    {
        if (o[key] is not JsonArray a) throw new InvalidDataException($"field 'rope_scaling.{key}' must be a list of numbers");
        double[] values;
        try { values = a.Select(x => x!.GetValue<double>()).ToArray(); }
        catch (Exception e) when (e is FormatException or InvalidOperationException or NullReferenceException)
        { throw new InvalidDataException($"field 'rope_scaling.{key}' must be a list of numbers"); }
        if (rotaryDim > 0 && values.Length != rotaryDim / 2)
            throw new InvalidDataException($"field 'rope_scaling.{key}' has {values.Length} entries, expected {rotaryDim / 2} (rotary dimensions / 2)");
        return values;
    }
}
