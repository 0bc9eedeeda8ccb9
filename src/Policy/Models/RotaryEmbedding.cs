using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary><c>rope_scaling</c> from config.json: only the types implemented below are accepted.</summary>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions)
{
    public static RopeScaling? Parse(JsonNode? node)
    {
        if (node is null) return null;
        if (node is not JsonObject o) throw new InvalidDataException("field 'rope_scaling' must be an object or null");
        string type = ModelConfig.Str(o, "rope_type") ?? ModelConfig.Str(o, "type") ?? "default";
        return type switch
        {
            "default" => null,
            "linear" => new RopeScaling(type, ModelConfig.Dbl(o, "factor") ?? throw new InvalidDataException("field 'rope_scaling.factor' is missing"), 0, 0, 0),
            "llama3" => new RopeScaling(type,
                ModelConfig.Dbl(o, "factor") ?? throw new InvalidDataException("field 'rope_scaling.factor' is missing"),
                ModelConfig.Dbl(o, "low_freq_factor") ?? 1.0,
                ModelConfig.Dbl(o, "high_freq_factor") ?? 4.0,
                ModelConfig.Int(o, "original_max_position_embeddings") ?? 8192),
            _ => throw new InvalidDataException($"field 'rope_scaling.rope_type' = {type} is not supported: implemented are default, linear, llama3"),
        };
    }
}

/// <summary>
/// Rotary position embeddings in Hugging Face's rotate-half layout: the first half of each head's dimensions pairs
/// with the second half (not interleaved). cos/sin come from a table indexed by position ids, so left-padded
/// batches (positions from the attention mask) and decoding steps cost one gather each.
/// </summary>
public sealed class RotaryEmbedding
{
    readonly Tensor invFreq;   // (D/2,)
    Tensor cosTable, sinTable; // (P, D)
    readonly int maxPositions;

    public RotaryEmbedding(int headDim, double theta, int maxPositions, RopeScaling? scaling, Device device)
    {
        this.maxPositions = maxPositions;
        // Same float32 arithmetic as transformers' default rope init, so tables match to the bit.
        using (var _ = NewDisposeScope())
        {
            var exponent = arange(0, headDim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32) / headDim;
            var inv = 1.0f / pow(tensor((float)theta), exponent);
            invFreq = Scale(inv, scaling).to(device).DetachFromDisposeScope();
        }
        cosTable = sinTable = null!;
        Build(Math.Min(maxPositions, 4096), device);
    }

    static Tensor Scale(Tensor inv, RopeScaling? s)
    {
        if (s is null) return inv;
        if (s.Type == "linear") return inv / (float)s.Factor;
        // llama3: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
        double lowWave = s.OriginalMaxPositions / s.LowFreqFactor, highWave = s.OriginalMaxPositions / s.HighFreqFactor;
        var wavelen = 2 * Math.PI / inv;
        var scaled = where(wavelen > lowWave, inv / s.Factor, inv);
        var smooth = (s.OriginalMaxPositions / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        var smoothed = (1 - smooth) * scaled / s.Factor + smooth * scaled;
        var medium = (wavelen >= highWave).logical_and(wavelen <= lowWave);
        return where(medium, smoothed, scaled).to(ScalarType.Float32);
    }

    void Build(int length, Device device)
    {
        cosTable?.Dispose(); sinTable?.Dispose();
        using var _ = NewDisposeScope();
        var t = arange(length, dtype: ScalarType.Int64, device: device).to(ScalarType.Float32);
        var freqs = outer(t, invFreq.to(device));                // (P, D/2)
        var emb = cat([freqs, freqs], -1);             // (P, D)
        cosTable = emb.cos().DetachFromDisposeScope();
        sinTable = emb.sin().DetachFromDisposeScope();
    }

    /// <summary>cos and sin for the given positions: (B, T) → two (B, 1, T, D) tensors. <paramref name="bound"/> exceeds every position (default: computed, one host sync).</summary>
    public (Tensor Cos, Tensor Sin) For(Tensor positionIds, long? bound = null)
    {
        long needed = bound is long bd ? Math.Min(bd, maxPositions) : positionIds.max().item<long>() + 1;
        if (needed > cosTable.shape[0])
        {
            if (needed > maxPositions) throw new ArgumentException($"position {needed - 1} exceeds max_position_embeddings ({maxPositions})");
            Build((int)Math.Min(maxPositions, Math.Max(needed, 2 * cosTable.shape[0])), cosTable.device);
        }
        long b = positionIds.shape[0], t = positionIds.shape[1];
        var flat = positionIds.reshape(-1);
        var cos = cosTable.index_select(0, flat).view(b, 1, t, -1);
        var sin = sinTable.index_select(0, flat).view(b, 1, t, -1);
        return (cos, sin);
    }

    /// <summary>x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x2, x1). x: (B, H, T, D).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([x2.neg(), x1], -1);
        return x * cos + rotated * sin;
    }

    public void To(Device device)
    {
        if (cosTable.device_type == device.type && cosTable.device_index == device.index) return;
        var c = cosTable.to(device); var s = sinTable.to(device);
        cosTable.Dispose(); sinTable.Dispose();
        cosTable = c; sinTable = s;
    }
}
