using static TorchSharp.torch;

namespace Rlft.Policy.Quantization;

/// <summary>
/// Double quantization of NF4's block scales (Dettmers et al., 2023, §3): the fp32 absmax of every 64-weight block
/// is itself stored in 8 bits. The scales are positive and alike, so their mean is subtracted first (one fp32 offset
/// per tensor); what is left is quantized symmetrically to int8 in groups of 256 with one fp32 scale per group.
/// Per weight that is 8/64 + 32/(64·256) ≈ 0.127 bits instead of 32/64 = 0.5. bitsandbytes uses a non-linear 8-bit
/// map for this step; a linear int8 code is used here, and its error is bounded by half a step:
/// |absmax − dequantized| ≤ groupScale / 254.
/// </summary>
internal static class ScaleQuantizer
{
    /// <summary>Block scales per group of the second level.</summary>
    public const int GroupSize = 256;

    /// <summary>absmax (fp32 (n,)) → codes int8 (n,), group scales fp32 (⌈n/256⌉,) (max |absmax − offset| of the group), offset fp32 (1,).</summary>
    public static (Tensor Codes, Tensor GroupScales, Tensor Offset) Quantize(Tensor absmax)
    {
        using var scope = NewDisposeScope();
        long n = absmax.shape[0], groups = (n + GroupSize - 1) / GroupSize;
        var a = absmax.to(ScalarType.Float32);
        var offset = a.mean().reshape(1);                                              // (1,)
        var centred = Padded(a - offset, groups * GroupSize).view(groups, GroupSize);    // (G, 256)
        var groupScale = centred.abs().amax([1]);                                        // (G,)
        var step = (groupScale / 127).clamp_min(float.Epsilon).unsqueeze(1);             // (G, 1)
        var codes = (centred / step).round().clamp(-127, 127).to(ScalarType.Int8).view(-1).narrow(0, 0, n).contiguous(); // (n,)
        return (codes.MoveToOuterDisposeScope(), groupScale.MoveToOuterDisposeScope(), offset.MoveToOuterDisposeScope());
    }

    /// <summary>The fp32 absmax values (n,) the codes stand for.</summary>
    public static Tensor Dequantize(Tensor codes, Tensor groupScales, Tensor offset)
    {
        using var scope = NewDisposeScope();
        long n = codes.shape[0], groups = groupScales.shape[0];
        var c = Padded(codes.to(ScalarType.Float32), groups * GroupSize).view(groups, GroupSize);  // (G, 256)
        var values = (c * (groupScales / 127).unsqueeze(1)).view(-1).narrow(0, 0, n) + offset;    // (n,)
        return values.MoveToOuterDisposeScope();
    }

    static Tensor Padded(Tensor x, long length) =>
        x.shape[0] == length ? x : cat([x, zeros(length - x.shape[0], dtype: x.dtype, device: x.device)]);
}
