using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>
/// y = x Wᵀ + b for the few rows of a decoding step (one per sequence), on the CPU in fp32 with AVX2 and FMA.
/// libtorch hands such a product to MKL's sgemm, which on AMD CPUs takes its generic path and packs the whole weight
/// matrix on every call: at the GPT-2 124M shape, batch 8, the packing copies took more time than the multiply and the
/// tied LM head (50,257 × 768) ran at 5 GB/s, a quarter of a plain copy. Here each weight is read once, straight from
/// its storage, and used for a group of four rows of x held in L1: tiles of 3 weight rows × 4 input rows for nn.Linear's
/// (out, in) layout, 4 input rows × 24 output columns for GPT-2's Conv1D (in, out) layout, the output's columns split
/// over the intra-op thread count. Same products as libtorch's, summed in another order (fp32 rounding differences
/// only). It applies where nothing is recorded for autograd (no-grad mode, or no input requiring grad), for
/// <see cref="MinRows"/>–<see cref="MaxRows"/> rows (one row stays with MKL's gemv, which is as fast; from 17 rows on
/// MKL's packing pays for itself) and an input width divisible by 8; everything else goes to <c>F.linear</c>/<c>matmul</c>.
/// </summary>
internal static unsafe class DecodeLinear
{
    public const int MinRows = 2, MaxRows = 16;
    const int Group = 4;                 // input rows per tile
    const int RowTile = 3;               // weight rows per tile, (out, in) layout
    const int ColumnTile = 24;           // output columns per tile, (in, out) layout
    const int Prefetch = 16;             // weight rows ahead, (in, out) layout

    /// <summary>Off, on the calling thread only: for benchmarks that time libtorch's path against this one in one process.</summary>
    internal static bool Disabled { get => t_disabled; set => t_disabled = value; }
    [ThreadStatic] static bool t_disabled;

    /// <summary>
    /// <paramref name="x"/> (..., in); <paramref name="weight"/> (out, in), or (in, out) when <paramref name="transposed"/>;
    /// <paramref name="bias"/> (out,) or null. The fast path when it applies, libtorch's otherwise.
    /// </summary>
    public static Tensor Forward(Tensor x, Tensor weight, Tensor? bias, bool transposed = false)
    {
        long inFeatures = transposed ? weight.shape[0] : weight.shape[1];
        long outFeatures = transposed ? weight.shape[1] : weight.shape[0];
        long rows = x.dim() == 0 || inFeatures == 0 ? 0 : x.numel() / inFeatures;
        if (Applies(x, weight, bias, rows, inFeatures, outFeatures, transposed)) return Apply(x, weight, bias, rows, inFeatures, outFeatures, transposed);
        if (!transposed) return F.linear(x, weight, bias);
        var flat = x.reshape(-1, inFeatures);                                              // (N, in)
        var outShape = x.shape[..^1].Append(outFeatures).ToArray();
        return (bias is null ? flat.matmul(weight) : addmm(bias, flat, weight, 1, 1)).view(outShape);   // (..., out)
    }

    /// <summary>Whether <see cref="Forward"/> takes the fast path for these tensors.</summary>
    internal static bool Applies(Tensor x, Tensor weight, Tensor? bias, long rows, long inFeatures, long outFeatures, bool transposed) =>
        !Disabled && Avx2.IsSupported && Fma.IsSupported
        && rows >= MinRows && rows <= MaxRows && inFeatures % 8 == 0 && inFeatures > 0 && x.shape[^1] == inFeatures
        && (!transposed || outFeatures % 8 == 0)
        && x.device_type == DeviceType.CPU && weight.device_type == DeviceType.CPU
        && x.dtype == ScalarType.Float32 && weight.dtype == ScalarType.Float32 && weight.is_contiguous()
        && (bias is null || bias.dtype == ScalarType.Float32 && bias.device_type == DeviceType.CPU && bias.is_contiguous() && bias.numel() == outFeatures)
        && (!is_grad_enabled() || !x.requires_grad && !weight.requires_grad && bias?.requires_grad != true);

    static Tensor Apply(Tensor x, Tensor weight, Tensor? bias, long rows, long inFeatures, long outFeatures, bool transposed)
    {
        using var scope = NewDisposeScope();
        int m = (int)rows, k = (int)inFeatures, n = (int)outFeatures;
        int padded = (m + Group - 1) / Group * Group;
        var input = x.reshape(m, k);                                                        // (m, in)
        // Rows padded to a multiple of the group with zeros: the kernels always work on four rows.
        input = padded == m ? input.contiguous() : F.pad(input, [0, 0, 0, padded - m]);     // (m', in)
        var y = empty(padded, n, dtype: ScalarType.Float32);                               // (m', out)
        fixed (byte* xs = input.bytes)
        fixed (byte* ws = weight.bytes)
        fixed (byte* ys = y.bytes)
        {
            nint px = (nint)xs, pw = (nint)ws, py = (nint)ys;
            int parts = Runtime.DecodeThreads.KernelParts;
            if (transposed)
            {
                int tiles = n / ColumnTile, per = (tiles + parts - 1) / parts;
                Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
                {
                    int from = p * per, to = Math.Min(tiles, from + per);
                    for (int t = from; t < to; t++)
                        for (int g = 0; g < padded; g += Group)
                            Columns4x24((float*)px + (long)g * k, (float*)pw + t * ColumnTile, k, n, (float*)py + (long)g * n + t * ColumnTile);
                    if (p == parts - 1)
                        for (int j = tiles * ColumnTile; j < n; j += 8)
                            for (int g = 0; g < padded; g += Group)
                                Columns4x8((float*)px + (long)g * k, (float*)pw + j, k, n, (float*)py + (long)g * n + j);
                });
            }
            else
            {
                int tiles = n / RowTile, per = (tiles + parts - 1) / parts;
                Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
                {
                    int from = p * per, to = Math.Min(tiles, from + per);
                    for (int t = from; t < to; t++)
                        for (int g = 0; g < padded; g += Group)
                            Rows3x4((float*)px + (long)g * k, (float*)pw + (long)t * RowTile * k, k, n, (float*)py + (long)g * n + t * RowTile);
                    if (p == parts - 1)
                        for (int j = tiles * RowTile; j < n; j++)
                            for (int g = 0; g < padded; g += Group)
                                Rows1x4((float*)px + (long)g * k, (float*)pw + (long)j * k, k, n, (float*)py + (long)g * n + j);
                });
            }
        }
        var result = padded == m ? y : y.narrow(0, 0, m);                                  // (m, out)
        if (bias is not null) result = result.add_(bias);
        return result.view(x.shape[..^1].Append(outFeatures).ToArray()).MoveToOuterDisposeScope();  // (..., out)
    }

    /// <summary>Three weight rows (out, in) against four input rows: twelve dot products of length k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Rows3x4(float* x, float* w, int k, int n, float* y)
    {
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default;
        float* w0 = w, w1 = w + k, w2 = w + 2 * k, x0 = x, x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k;
        for (int c = 0; c < k; c += 8)
        {
            var v0 = Avx.LoadVector256(w0 + c); var v1 = Avx.LoadVector256(w1 + c); var v2 = Avx.LoadVector256(w2 + c);
            var u = Avx.LoadVector256(x0 + c); a00 = Fma.MultiplyAdd(v0, u, a00); a10 = Fma.MultiplyAdd(v1, u, a10); a20 = Fma.MultiplyAdd(v2, u, a20);
            u = Avx.LoadVector256(x1 + c); a01 = Fma.MultiplyAdd(v0, u, a01); a11 = Fma.MultiplyAdd(v1, u, a11); a21 = Fma.MultiplyAdd(v2, u, a21);
            u = Avx.LoadVector256(x2 + c); a02 = Fma.MultiplyAdd(v0, u, a02); a12 = Fma.MultiplyAdd(v1, u, a12); a22 = Fma.MultiplyAdd(v2, u, a22);
            u = Avx.LoadVector256(x3 + c); a03 = Fma.MultiplyAdd(v0, u, a03); a13 = Fma.MultiplyAdd(v1, u, a13); a23 = Fma.MultiplyAdd(v2, u, a23);
        }
        y[0] = Vector256.Sum(a00); y[1] = Vector256.Sum(a10); y[2] = Vector256.Sum(a20);
        y[n] = Vector256.Sum(a01); y[n + 1] = Vector256.Sum(a11); y[n + 2] = Vector256.Sum(a21);
        y[2 * n] = Vector256.Sum(a02); y[2 * n + 1] = Vector256.Sum(a12); y[2 * n + 2] = Vector256.Sum(a22);
        y[3 * n] = Vector256.Sum(a03); y[3 * n + 1] = Vector256.Sum(a13); y[3 * n + 2] = Vector256.Sum(a23);
    }

    /// <summary>One weight row against four input rows (the out % 3 rows left over).</summary>
    static void Rows1x4(float* x, float* w, int k, int n, float* y)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int c = 0; c < k; c += 8)
        {
            var v = Avx.LoadVector256(w + c);
            a0 = Fma.MultiplyAdd(v, Avx.LoadVector256(x + c), a0); a1 = Fma.MultiplyAdd(v, Avx.LoadVector256(x + k + c), a1);
            a2 = Fma.MultiplyAdd(v, Avx.LoadVector256(x + 2 * k + c), a2); a3 = Fma.MultiplyAdd(v, Avx.LoadVector256(x + 3 * k + c), a3);
        }
        y[0] = Vector256.Sum(a0); y[n] = Vector256.Sum(a1); y[2 * n] = Vector256.Sum(a2); y[3 * n] = Vector256.Sum(a3);
    }

    /// <summary>Four input rows against 24 output columns of an (in, out) weight: each weight row's slice read once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Columns4x24(float* x, float* w, int k, int n, float* y)
    {
        Vector256<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        float* x0 = x, x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k;
        for (int c = 0; c < k; c++)
        {
            float* row = w + (long)c * n;
            // Consecutive rows are n floats apart, beyond what the hardware prefetcher follows: ask for the slice
            // 16 rows ahead (a hint; past the end of the weight it is dropped, never a fault).
            Sse.Prefetch0(row + Prefetch * (long)n); Sse.Prefetch0(row + Prefetch * (long)n + ColumnTile - 1);
            var v0 = Avx.LoadVector256(row); var v1 = Avx.LoadVector256(row + 8); var v2 = Avx.LoadVector256(row + 16);
            var u = Vector256.Create(x0[c]); a00 = Fma.MultiplyAdd(v0, u, a00); a01 = Fma.MultiplyAdd(v1, u, a01); a02 = Fma.MultiplyAdd(v2, u, a02);
            u = Vector256.Create(x1[c]); a10 = Fma.MultiplyAdd(v0, u, a10); a11 = Fma.MultiplyAdd(v1, u, a11); a12 = Fma.MultiplyAdd(v2, u, a12);
            u = Vector256.Create(x2[c]); a20 = Fma.MultiplyAdd(v0, u, a20); a21 = Fma.MultiplyAdd(v1, u, a21); a22 = Fma.MultiplyAdd(v2, u, a22);
            u = Vector256.Create(x3[c]); a30 = Fma.MultiplyAdd(v0, u, a30); a31 = Fma.MultiplyAdd(v1, u, a31); a32 = Fma.MultiplyAdd(v2, u, a32);
        }
        a00.Store(y); a01.Store(y + 8); a02.Store(y + 16);
        a10.Store(y + n); a11.Store(y + n + 8); a12.Store(y + n + 16);
        a20.Store(y + 2 * n); a21.Store(y + 2 * n + 8); a22.Store(y + 2 * n + 16);
        a30.Store(y + 3 * n); a31.Store(y + 3 * n + 8); a32.Store(y + 3 * n + 16);
    }

    /// <summary>Four input rows against 8 output columns (the out % 24 columns left over).</summary>
    static void Columns4x8(float* x, float* w, int k, int n, float* y)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int c = 0; c < k; c++)
        {
            var v = Avx.LoadVector256(w + (long)c * n);
            a0 = Fma.MultiplyAdd(v, Vector256.Create(x[c]), a0); a1 = Fma.MultiplyAdd(v, Vector256.Create(x[k + c]), a1);
            a2 = Fma.MultiplyAdd(v, Vector256.Create(x[2 * k + c]), a2); a3 = Fma.MultiplyAdd(v, Vector256.Create(x[3 * k + c]), a3);
        }
        a0.Store(y); a1.Store(y + n); a2.Store(y + 2 * n); a3.Store(y + 3 * n);
    }
}
