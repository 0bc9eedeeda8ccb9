using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Rotary position embeddings in Hugging Face's rotate-half layout: the first half of the rotated dimensions pairs
/// with the second half (not interleaved). Only the first <c>rotaryDim</c> dimensions of each head turn (Phi-3's
/// <c>partial_rotary_factor</c>); the rest pass through. cos/sin come from a table indexed by position ids, so
/// left-padded batches (positions from the attention mask) and decoding steps cost one gather each.
/// longrope keeps two tables: the short factors while every position is below original_max_position_embeddings,
/// the long ones once a position reaches it (transformers' longrope_frequency_update, on max(position_ids) + 1).
/// </summary>
internal sealed class RotaryEmbedding
{
    sealed class Table(Tensor invFreq)
    {
        public readonly Tensor InvFreq = invFreq;   // (R/2,)
        public Tensor? Cos, Sin;                    // (P, R)
    }

    readonly Table shortTable;
    readonly Table? longTable;
    readonly int maxPositions, longFrom;
    readonly float attentionScaling;

    /// <summary>Rotated dimensions per head (even).</summary>
    public int Dim { get; }

    public RotaryEmbedding(int rotaryDim, double theta, int maxPositions, RopeScaling? scaling, Device device)
    {
        Dim = rotaryDim;
        this.maxPositions = maxPositions;
        attentionScaling = (float)(scaling?.AttentionFactor ?? 1.0);
        longFrom = scaling?.Type == "longrope" ? scaling.OriginalMaxPositions : int.MaxValue;
        // Same float32 arithmetic as transformers' rope init functions, so tables match to the bit.
        using (var _ = NewDisposeScope())
        {
            // Every tensor on `device` explicitly: the process default device may be meta (shape-only construction).
            var exponent = arange(0, rotaryDim, 2, dtype: ScalarType.Int64, device: device).to(ScalarType.Float32) / rotaryDim;
            var powers = pow(tensor((float)theta, device: device), exponent);                  // base^(2i/R)
            if (scaling?.Type == "longrope")
            {
                shortTable = new Table((1.0f / (Factors(scaling.ShortFactor!, device) * powers)).DetachFromDisposeScope());
                longTable = new Table((1.0f / (Factors(scaling.LongFactor!, device) * powers)).DetachFromDisposeScope());
            }
            else shortTable = new Table(Scale(1.0f / powers, scaling).DetachFromDisposeScope());
        }
        Build(shortTable, Math.Min(maxPositions, 4096), device);
    }

    static Tensor Factors(double[] f, Device device) => tensor(f.Select(x => (float)x).ToArray(), device: device);

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

    void Build(Table table, int length, Device device)
    {
        table.Cos?.Dispose(); table.Sin?.Dispose();
        using var _ = NewDisposeScope();
        var t = arange(length, dtype: ScalarType.Int64, device: device).to(ScalarType.Float32);
        var freqs = outer(t, table.InvFreq.to(device));         // (P, R/2)
        var emb = cat([freqs, freqs], -1);                        // (P, R)
        var cos = emb.cos(); var sin = emb.sin();
        if (attentionScaling != 1f) { cos = cos * attentionScaling; sin = sin * attentionScaling; }
        table.Cos = cos.DetachFromDisposeScope();
        table.Sin = sin.DetachFromDisposeScope();
    }

    /// <summary>True when these positions select longrope's long factors (a position at or past original_max_position_embeddings); one host sync.</summary>
    public bool UsesLongFactors(Tensor positionIds) => longTable is not null && positionIds.max().item<long>() + 1 > longFrom;

    /// <summary>cos and sin for the given positions: (B, T) → two (B, 1, T, R) tensors. <paramref name="bound"/> exceeds every position (default: computed, one host sync).</summary>
    public (Tensor Cos, Tensor Sin) For(Tensor positionIds, long? bound = null)
    {
        var table = UsesLongFactors(positionIds) ? longTable! : shortTable;
        long needed = bound is long bd ? Math.Min(bd, maxPositions) : positionIds.max().item<long>() + 1;
        if (table.Cos is null || needed > table.Cos.shape[0])
        {
            if (needed > maxPositions) throw new ArgumentException($"position {needed - 1} exceeds max_position_embeddings ({maxPositions})");
            long have = table.Cos?.shape[0] ?? 0;
            Build(table, (int)Math.Min(maxPositions, Math.Max(needed, Math.Max(2 * have, Math.Min(maxPositions, 4096)))), shortTable.Cos!.device);
        }
        long b = positionIds.shape[0], t = positionIds.shape[1];
        var flat = positionIds.reshape(-1);
        var cos = table.Cos!.index_select(0, flat).view(b, 1, t, -1);
        var sin = table.Sin!.index_select(0, flat).view(b, 1, t, -1);
        return (cos, sin);
    }

    /// <summary>
    /// x * cos + rotate_half(x) * sin over the first R dimensions (R = cos's last dimension), the rest unchanged;
    /// rotate_half(x) = cat(-x2, x1). x: (B, H, T, D), cos/sin: (B, 1, T, R) with R ≤ D.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long r = cos.shape[^1], d = x.shape[^1];
        // The table is fp32; a bf16 model rotates in bf16, as transformers casts cos/sin to the activations' dtype.
        if (cos.dtype != x.dtype) (cos, sin) = (cos.to(x.dtype), sin.to(x.dtype));
        var rot = r == d ? x : x.narrow(-1, 0, r);
        long half = r / 2;
        var x1 = rot.narrow(-1, 0, half);
        var x2 = rot.narrow(-1, half, half);
        var turned = rot * cos + cat([x2.neg(), x1], -1) * sin;
        return r == d ? turned : cat([turned, x.narrow(-1, r, d - r)], -1);
    }

    public void To(Device device)
    {
        foreach (var table in longTable is null ? [shortTable] : new[] { shortTable, longTable })
        {
            if (table.Cos is null || (table.Cos.device_type == device.type && table.Cos.device_index == device.index)) continue;
            var c = table.Cos.to(device); var s = table.Sin!.to(device);
            table.Cos.Dispose(); table.Sin.Dispose();
            table.Cos = c; table.Sin = s;
        }
    }
}
