using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Quantization;

/// <summary>
/// The 4-bit NormalFloat data type (Dettmers et al., 2023, arXiv:2305.14314, appendix E): 16 levels at quantiles of
/// N(0, 1), normalised to [−1, 1], with an exact zero — 8 levels for the positive half, 7 for the negative, so that
/// zero is representable. Values are those of bitsandbytes' <c>create_normal_map(offset = 0.9677083)</c>; a test
/// recomputes them from the quantile definition. Codes are packed two per byte, the first in the high nibble
/// (bitsandbytes' order).
/// </summary>
internal static class Nf4
{
    /// <summary>The 16 levels, ascending; index 7 is 0, index 15 is 1.</summary>
    public static readonly float[] Levels =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>The code of 0.</summary>
    public const int ZeroCode = 7;

    /// <summary>The largest distance between neighbouring levels (between 0.7230 and 1): twice the worst rounding error of a normalised value.</summary>
    public static float LargestGap { get; } = Enumerable.Range(1, 15).Max(i => Levels[i] - Levels[i - 1]);

    /// <summary>
    /// Nearest level of each normalised value in [−1, 1] (ties go up) → codes 0..15 as uint8, same shape: the code is
    /// the number of midpoints between neighbouring levels at or below the value (15 comparisons; libtorch's
    /// bucketize measured 4× slower here).
    /// </summary>
    public static Tensor Encode(Tensor normalised)
    {
        using var scope = NewDisposeScope();
        var x = normalised.to(ScalarType.Float32);
        var codes = zeros(x.shape, dtype: ScalarType.Byte, device: x.device);
        for (int i = 0; i < 15; i++) codes.add_(x.ge((Levels[i] + Levels[i + 1]) / 2));
        return codes.MoveToOuterDisposeScope();
    }

    /// <summary>Codes (uint8, 0..15) → levels as <paramref name="dtype"/>, same shape.</summary>
    public static Tensor Decode(Tensor codes, ScalarType dtype = ScalarType.Float32)
    {
        using var scope = NewDisposeScope();
        var table = tensor(Levels, device: codes.device).to(dtype);               // (16,)
        return table.index_select(0, codes.flatten().to(ScalarType.Int64)).view(codes.shape).MoveToOuterDisposeScope();
    }

    /// <summary>Codes (uint8 (n,), each 0..15) → bytes (⌈n/2⌉,): code 2i in the high nibble, 2i+1 in the low; an odd tail pads with 0.</summary>
    public static Tensor Pack(Tensor codes)
    {
        using var scope = NewDisposeScope();
        long n = codes.shape[0];
        var even = n % 2 == 0 ? codes : cat([codes, zeros(1, dtype: ScalarType.Byte, device: codes.device)]);
        var pairs = even.view(-1, 2);                                               // (⌈n/2⌉, 2)
        return pairs[.., 0].bitwise_left_shift(4).bitwise_or(pairs[.., 1]).MoveToOuterDisposeScope();
    }

    /// <summary>Bytes from <see cref="Pack"/> → the first <paramref name="count"/> codes (uint8 (count,)).</summary>
    public static Tensor Unpack(Tensor packed, long count)
    {
        if (count > 2 * packed.shape[0] || count < 2 * packed.shape[0] - 1)
            throw new ArgumentException($"{packed.shape[0]} packed bytes hold {2 * packed.shape[0] - 1} or {2 * packed.shape[0]} codes, not {count}");
        using var scope = NewDisposeScope();
        var high = packed.bitwise_right_shift(4);
        var low = packed.bitwise_and(0x0F);
        return stack([high, low], 1).view(-1).narrow(0, 0, count).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Packed bytes (uint8 (2m,)) → int16 (m,), each holding four codes: the bytes of a pair, little-endian (the first
    /// byte in the low 8 bits), so the stored bits are the packed bytes themselves. One gather per four weights then
    /// dequantizes (<see cref="QuadTable"/>).
    /// </summary>
    public static Tensor ToQuads(Tensor packed)
    {
        if (packed.shape[0] % 2 != 0) throw new ArgumentException($"quads need an even number of packed bytes, got {packed.shape[0]}");
        using var scope = NewDisposeScope();
        var pairs = packed.view(-1, 2).to(ScalarType.Int32);                              // (m, 2)
        var u = pairs[.., 0] + pairs[.., 1] * 256;                                          // 0..65535
        return (u - (u >= 32768).to(ScalarType.Int32) * 65536).to(ScalarType.Int16).MoveToOuterDisposeScope();
    }

    /// <summary>The inverse of <see cref="ToQuads"/>: int16 (m,) → packed bytes uint8 (2m,).</summary>
    public static Tensor FromQuads(Tensor quads)
    {
        using var scope = NewDisposeScope();
        var u = quads.to(ScalarType.Int32).bitwise_and(0xFFFF);                            // (m,) 0..65535
        return stack([u.bitwise_and(0xFF), u.bitwise_right_shift(8)], 1).view(-1).to(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The four levels of every int16 quad, as a (65536, 4) table: row r holds the quad whose value is r − 32768
    /// (so a gather index is the quad plus 32768). One table per dtype and device, built once (1 MiB in fp32).
    /// </summary>
    public static Tensor QuadTable(ScalarType dtype, Device device)
    {
        var key = (dtype, device.type, device.index);
        lock (Tables)
        {
            if (Tables.TryGetValue(key, out var cached)) return cached;
            var values = new float[65536 * 4];
            for (int r = 0; r < 65536; r++)
            {
                int u = r ^ 0x8000, b0 = u & 0xFF, b1 = u >> 8;
                values[4 * r] = Levels[b0 >> 4]; values[4 * r + 1] = Levels[b0 & 0x0F];
                values[4 * r + 2] = Levels[b1 >> 4]; values[4 * r + 3] = Levels[b1 & 0x0F];
            }
            using var cpu = tensor(values, [65536, 4]);
            var table = cpu.to(dtype).to(device).DetachFromDisposeScope();
            Tables[key] = table;
            return table;
        }
    }

    static readonly Dictionary<(ScalarType, DeviceType, int), Tensor> Tables = new();

}
