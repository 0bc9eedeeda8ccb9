using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Quantization;

/// <summary>
/// NF4 dequantization on the CPU without libtorch's gather: with AVX-512 the 16-level table sits in one register and a
/// permute looks up 16 codes at once (bitsandbytes' CPU path does the same); elsewhere a scalar loop over a 256-entry
/// pair table. The arithmetic is the tensor path's (level × block absmax, one fp32 multiply per weight), so the
/// results are bit-identical to it; blocks are split over the intra-op thread count. Measured here: several times
/// faster than the index_select path. When decoding, every layer would still be rebuilt for every token, so for a few
/// rows (<see cref="GemvMaxRows"/>) <see cref="Gemv"/> multiplies straight from the 4-bit codes instead: W is never
/// written out, only 0.52 bytes per weight are read (the same products as dequantize-then-matmul, summed in another order).
/// </summary>
internal static unsafe class Nf4Kernel
{
    const int BlockSize = QuantizedWeight.BlockSize;
    const long BlocksPerTask = 2048;

    /// <summary>Whether the fast path applies: CPU storage, fp32 output.</summary>
    public static bool Applies(Device device, ScalarType dtype) => device.type == DeviceType.CPU && dtype == ScalarType.Float32;

    /// <summary>Rows up to which <see cref="Gemv"/> is used (decoding steps: one row per sequence).</summary>
    public const int GemvMaxRows = 16;

    /// <summary>Whether <see cref="Gemv"/> can take an input of <paramref name="rows"/> rows for a layer of <paramref name="inFeatures"/> inputs.</summary>
    public static bool GemvApplies(Device device, ScalarType dtype, long rows, long inFeatures) =>
        Applies(device, dtype) && Avx512F.IsSupported && rows <= GemvMaxRows && inFeatures % BlockSize == 0;

    /// <summary>
    /// y = x Wᵀ from the codes: x fp32 (rows, in) contiguous, W's codes (out·in/4 int16) and block scales fp32 (out·in/64)
    /// → y fp32 (rows, out). Rows of W are split over the intra-op threads; each block of 64 weights is decoded once into
    /// registers and used for every row of x.
    /// </summary>
    public static Tensor Gemv(Tensor x, Tensor packed, Tensor absmax, long outFeatures, long inFeatures)
    {
        long rows = x.shape[0];
        if (!GemvApplies(x.device, x.dtype, rows, inFeatures) || x.shape[1] != inFeatures || !x.is_contiguous() || !absmax.is_contiguous()
            || absmax.shape[0] != outFeatures * inFeatures / BlockSize || packed.shape[0] != outFeatures * inFeatures / 4)
            throw new ArgumentException("nf4 gemv: mismatched, non-contiguous or unsupported tensors");
        var y = empty(rows, outFeatures, dtype: ScalarType.Float32);
        fixed (byte* xs = x.bytes)
        fixed (byte* codes = packed.bytes)
        fixed (byte* scales = absmax.bytes)
        fixed (byte* ys = y.bytes)
        {
            nint px = (nint)xs, pc = (nint)codes, ps = (nint)scales, py = (nint)ys;
            const long rowsPerTask = 64;
            long tasks = (outFeatures + rowsPerTask - 1) / rowsPerTask;
            var options = new ParallelOptions { MaxDegreeOfParallelism = Runtime.DecodeThreads.KernelParts };
            Parallel.For(0, tasks, options, t =>
            {
                long from = t * rowsPerTask;
                GemvRows((float*)px, (byte*)pc, (float*)ps, (float*)py, (int)rows, outFeatures, inFeatures, from, Math.Min(outFeatures, from + rowsPerTask));
            });
        }
        return y;
    }

    static void GemvRows(float* x, byte* codes, float* scales, float* y, int rows, long outFeatures, long inFeatures, long from, long to)
    {
        var acc = stackalloc Vector512<float>[GemvMaxRows];
        fixed (float* levels = Nf4.Levels)
        {
            var table = Vector512.Load(levels);
            var mask = Vector512.Create(0x0F);
            var first = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            var second = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            long blocksPerRow = inFeatures / BlockSize;
            for (long o = from; o < to; o++)
            {
                for (int m = 0; m < rows; m++) acc[m] = Vector512<float>.Zero;
                for (long j = 0; j < blocksPerRow; j++)
                {
                    long k = o * blocksPerRow + j;
                    var scale = Vector512.Create(scales[k]);
                    byte* src = codes + k * (BlockSize / 2);
                    float* xBlock = x + j * BlockSize;
                    for (int half = 0; half < 2; half++)
                    {
                        var bytes = Avx512F.ConvertToVector512Int32(Vector128.Load(src + 16 * half));
                        var high = Avx512F.PermuteVar16x32(table, Avx512F.ShiftRightLogical(bytes, 4));
                        var low = Avx512F.PermuteVar16x32(table, Avx512F.And(bytes, mask));
                        var w0 = Avx512F.Multiply(Avx512F.PermuteVar16x32x2(high, first, low), scale);     // weights 32·half … +15
                        var w1 = Avx512F.Multiply(Avx512F.PermuteVar16x32x2(high, second, low), scale);    // weights 32·half + 16 … +31
                        for (int m = 0; m < rows; m++)
                        {
                            float* xm = xBlock + m * inFeatures + 32 * half;
                            acc[m] = Avx512F.FusedMultiplyAdd(w1, Vector512.Load(xm + 16), Avx512F.FusedMultiplyAdd(w0, Vector512.Load(xm), acc[m]));
                        }
                    }
                }
                for (int m = 0; m < rows; m++) y[m * outFeatures + o] = Vector512.Sum(acc[m]);
            }
        }
    }

    /// <summary>
    /// <paramref name="packed"/>: the codes (int16 (blocks·16,), whose bytes are the packed codes, the first of each byte in
    /// its high nibble); <paramref name="absmax"/>: fp32 (blocks,); <paramref name="output"/>: fp32 (blocks·64,); all
    /// contiguous on the CPU.
    /// </summary>
    public static void Dequantize(Tensor packed, Tensor absmax, Tensor output)
    {
        long blocks = absmax.shape[0];
        if (packed.shape[0] != blocks * BlockSize / 4 || output.shape[0] != blocks * BlockSize || !packed.is_contiguous() || !absmax.is_contiguous() || !output.is_contiguous())
            throw new ArgumentException("nf4 kernel: mismatched or non-contiguous tensors");
        fixed (byte* codes = packed.bytes)
        fixed (byte* scales = absmax.bytes)
        fixed (byte* target = output.bytes)
            Run(codes, (float*)scales, (float*)target, blocks);
    }

    static void Run(byte* codes, float* scales, float* target, long blocks)
    {
        long tasks = (blocks + BlocksPerTask - 1) / BlocksPerTask;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Runtime.DecodeThreads.KernelParts };
        nint c = (nint)codes, s = (nint)scales, o = (nint)target;
        if (tasks == 1) Range(codes, scales, target, 0, blocks);
        else Parallel.For(0, tasks, options, t =>
        {
            long start = t * BlocksPerTask;
            Range((byte*)c, (float*)s, (float*)o, start, Math.Min(blocks, start + BlocksPerTask));
        });
    }

    static void Range(byte* codes, float* scales, float* output, long from, long to)
    {
        if (Avx512F.IsSupported) Avx512(codes, scales, output, from, to);
        else Scalar(codes, scales, output, from, to);
    }

    static void Avx512(byte* codes, float* scales, float* output, long from, long to)
    {
        fixed (float* levels = Nf4.Levels)
        {
            var table = Vector512.Load(levels);
            var mask = Vector512.Create(0x0F);
            // Interleave the even-position (high nibble) and odd-position (low nibble) levels back into order.
            var first = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            var second = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            for (long k = from; k < to; k++)
            {
                var scale = Vector512.Create(scales[k]);
                byte* src = codes + k * (BlockSize / 2);
                float* dst = output + k * BlockSize;
                for (int half = 0; half < 2; half++)
                {
                    var bytes = Avx512F.ConvertToVector512Int32(Vector128.Load(src + 16 * half));   // 16 bytes → 16 int lanes
                    var high = Avx512F.PermuteVar16x32(table, Avx512F.ShiftRightLogical(bytes, 4)); // levels of elements 0, 2, 4, …
                    var low = Avx512F.PermuteVar16x32(table, Avx512F.And(bytes, mask));              // levels of elements 1, 3, 5, …
                    Avx512F.Multiply(Avx512F.PermuteVar16x32x2(high, first, low), scale).Store(dst + 32 * half);
                    Avx512F.Multiply(Avx512F.PermuteVar16x32x2(high, second, low), scale).Store(dst + 32 * half + 16);
                }
            }
        }
    }

    static void Scalar(byte* codes, float* scales, float* output, long from, long to)
    {
        fixed (float* levels = Nf4.Levels)
        {
            for (long k = from; k < to; k++)
            {
                float scale = scales[k];
                byte* src = codes + k * (BlockSize / 2);
                float* dst = output + k * BlockSize;
                for (int j = 0; j < BlockSize / 2; j++)
                {
                    int b = src[j];
                    dst[2 * j] = levels[b >> 4] * scale;
                    dst[2 * j + 1] = levels[b & 0x0F] * scale;
                }
            }
        }
    }
}
