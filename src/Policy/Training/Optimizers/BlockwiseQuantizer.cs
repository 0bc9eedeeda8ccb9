using static TorchSharp.torch;

namespace Rlft.Policy.Training.Optimizers;

/// <summary>
/// Block-wise 8-bit quantization of optimizer state (Dettmers et al. 2021, "8-bit Optimizers via Block-wise
/// Quantization"; bitsandbytes' <c>quantize_blockwise</c>): a flat fp32 tensor is cut into blocks of
/// <see cref="BlockSize"/> values, each block is divided by its absolute maximum (kept in fp32) and every value is stored
/// as the index (one byte) of the nearest entry of a 256-entry code map in [-1, 1] (signed) or [0, 1] (unsigned).
/// The maps are bitsandbytes' dynamic tree maps (<c>create_dynamic_map</c>): 7 decades (1e-6 … 1) with more
/// fraction steps in the larger decades, so small values keep their relative precision — what the second moment
/// needs, whose entries span many orders of magnitude within a block.
/// </summary>
internal sealed class BlockwiseQuantizer : IDisposable
{
    /// <summary>Values per block sharing one fp32 absmax (bitsandbytes' blockwise optimizers used 2048, later 256).</summary>
    public int BlockSize { get; }
    /// <summary>The 256 code values, ascending (fp32).</summary>
    public Tensor Map { get; }
    readonly Tensor _midpoints;   // (255) boundaries between neighbouring codes: searchsorted gives the nearest code

    public BlockwiseQuantizer(bool signed, int blockSize = 2048, Device? device = null)
    {
        if (blockSize < 16) throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "a block holds at least 16 values");
        BlockSize = blockSize;
        var map = DynamicMap(signed);
        Map = tensor(map, device: device).DetachFromDisposeScope();
        _midpoints = tensor(map.Zip(map.Skip(1), (a, b) => (a + b) / 2).ToArray(), device: device).DetachFromDisposeScope();
    }

    /// <summary>
    /// bitsandbytes' <c>create_dynamic_map(signed, max_exponent_bits = 7, total_bits = 8)</c>: for decade i = 0…6 the
    /// midpoints of <c>linspace(0.1, 1, n_i + 1)</c> scaled by 10^(i−6), with n_i = 2^i values (signed, mirrored
    /// below zero) or 2^(i+1) (unsigned); plus 0 and 1. 256 values, sorted.
    /// </summary>
    public static float[] DynamicMap(bool signed)
    {
        const int exponentBits = 7;
        var data = new List<double>();
        for (int i = 0; i < exponentBits; i++)
        {
            int fractionItems = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            double scale = Math.Pow(10, -(exponentBits - 1) + i);
            for (int k = 0; k + 1 < fractionItems; k++)
            {
                double lo = 0.1 + 0.9 * k / (fractionItems - 1), hi = 0.1 + 0.9 * (k + 1) / (fractionItems - 1);
                double mean = (lo + hi) / 2;
                data.Add(scale * mean);
                if (signed) data.Add(-scale * mean);
            }
        }
        data.Add(0);
        data.Add(1);
        if (data.Count != 256) throw new InvalidOperationException($"dynamic map has {data.Count} entries, not 256");
        return data.Select(x => (float)x).OrderBy(x => x).ToArray();
    }

    /// <summary>Blocks needed for <paramref name="n"/> values.</summary>
    public long Blocks(long n) => (n + BlockSize - 1) / BlockSize;

    /// <summary>
    /// Quantizes the flat fp32 <paramref name="x"/> (n values, starting on a block boundary) into
    /// <paramref name="codes"/> (n bytes) and <paramref name="absmax"/> (⌈n / block⌉ floats), both written in place.
    /// </summary>
    public void Quantize(Tensor x, Tensor codes, Tensor absmax)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], blocks = Blocks(n), pad = blocks * BlockSize - n;
        var padded = pad > 0 ? cat([x, zeros(pad, dtype: x.dtype, device: x.device)]) : x;
        var rows = padded.view(blocks, BlockSize);                                         // (blocks, B)
        var max = rows.abs().amax([1]);                                                    // (blocks)
        var normed = rows / where(max > 0, max, ones_like(max)).unsqueeze(1);             // (blocks, B) in [-1, 1]
        var index = searchsorted(_midpoints, normed.reshape(-1));                          // (blocks·B) nearest code
        codes.copy_(index.narrow(0, 0, n).to(ScalarType.Byte));
        absmax.copy_(max);
    }

    /// <summary>The fp32 values of <paramref name="codes"/> (n bytes) with their blocks' <paramref name="absmax"/>.</summary>
    public Tensor Dequantize(Tensor codes, Tensor absmax)
    {
        using var scope = NewDisposeScope();
        long n = codes.shape[0];
        var scale = absmax.repeat_interleave(BlockSize).narrow(0, 0, n);                   // (n)
        return Map.index_select(0, codes.to(ScalarType.Int64)).mul_(scale).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Map.Dispose();
        _midpoints.Dispose();
    }
}
