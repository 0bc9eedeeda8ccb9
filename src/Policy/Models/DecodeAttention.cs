using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Rlft.Policy.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Attention of one new query per sequence over its KV cache, on the CPU in fp32 with AVX2 and FMA: what a decoding
/// step asks of every layer. libtorch's SDPA runs such a query through its flash kernel, which forms q·kᵀ and p·v with
/// one MKL call per (sequence, head) and key block; for one query MKL takes its gemv path, and at the policy bench's
/// shape (batch 16, 8 heads, 4 layers) those ~1,000 calls a step cost more than the arithmetic. Here each (sequence,
/// head) pair reads its keys and values once, straight from the cache's strided views (grouped KV heads by index, no
/// repeated copy), in a two-pass softmax with the same scale, soft-cap and mask semantics as
/// <see cref="AttentionKernel.Attend"/>; pairs are split over <see cref="DecodeThreads.KernelParts"/> threads. Same
/// products as libtorch's, summed in another order (fp32 rounding differences only).
/// </summary>
internal static unsafe class DecodeAttention
{
    /// <summary>Off, on the calling thread only: for benchmarks and tests that compare with libtorch's path.</summary>
    internal static bool Disabled { get => t_disabled; set => t_disabled = value; }
    [ThreadStatic] static bool t_disabled;

    /// <summary>
    /// Whether <see cref="Apply"/> takes these tensors: q (B, nh, 1, D), k and v (B, kv, S, D) with kv dividing nh and
    /// D a multiple of 8, each row of D contiguous; mask null or (B, 1, 1, S) bool; not causal (one query sees every
    /// key); fp32 on the CPU; nothing recorded for autograd.
    /// </summary>
    public static bool Applies(Tensor q, Tensor k, Tensor v, AttentionMask mask) =>
        !t_disabled && Avx2.IsSupported && Fma.IsSupported
        && q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q.shape[2] == 1 && !mask.Causal
        && q.device_type == DeviceType.CPU && k.device_type == DeviceType.CPU && v.device_type == DeviceType.CPU
        && q.dtype == ScalarType.Float32 && k.dtype == ScalarType.Float32 && v.dtype == ScalarType.Float32
        && q.shape[3] % 8 == 0 && q.shape[3] > 0 && k.shape[3] == q.shape[3] && v.shape[3] == q.shape[3]
        && k.shape[0] == q.shape[0] && v.shape[0] == q.shape[0] && k.shape[1] > 0 && q.shape[1] % k.shape[1] == 0
        && v.shape[1] == k.shape[1] && v.shape[2] == k.shape[2] && k.shape[2] > 0
        && k.stride(3) == 1 && v.stride(3) == 1
        && (mask.Mask is null || mask.Mask.dtype == ScalarType.Bool && mask.Mask.dim() == 4 && mask.Mask.shape[0] == q.shape[0]
            && mask.Mask.shape[1] == 1 && mask.Mask.shape[2] == 1 && mask.Mask.shape[3] == k.shape[2])
        && (!is_grad_enabled() || !q.requires_grad && !k.requires_grad && !v.requires_grad);

    /// <summary>softmax(scale · q kᵀ [soft-capped] + mask) v → (B, nh, 1, D); <paramref name="scale"/> null means D^-½.</summary>
    public static Tensor Apply(Tensor q, Tensor k, Tensor v, AttentionMask mask, double? scale, double? softcap)
    {
        using var scope = NewDisposeScope();
        int b = (int)q.shape[0], heads = (int)q.shape[1], kvHeads = (int)k.shape[1], s = (int)k.shape[2], d = (int)q.shape[3];
        int groups = heads / kvHeads;
        var query = q.contiguous();                                                        // (B, nh, 1, D)
        var allowed = mask.Mask?.contiguous();                                             // (B, 1, 1, S)
        var y = empty(b, heads, 1, d, dtype: ScalarType.Float32);                          // (B, nh, 1, D)
        float sc = (float)(scale ?? 1.0 / Math.Sqrt(d));
        float cap = softcap is double c ? (float)c : 0f;
        long ks0 = k.stride(0), ks1 = k.stride(1), ks2 = k.stride(2), vs0 = v.stride(0), vs1 = v.stride(1), vs2 = v.stride(2);
        nint pk = First(k), pv = First(v), pq = First(query), py = First(y);
        nint pm = allowed is null ? 0 : First(allowed);
        int pairs = b * heads, parts = Math.Min(pairs, DecodeThreads.KernelParts);
        void Pairs(int from, int to)
        {
            var scores = new float[s];
            fixed (float* p = scores)
                for (int pair = from; pair < to; pair++)
                {
                    int row = pair / heads, head = pair % heads, kv = head / groups;
                    One((float*)pq + (long)pair * d, (float*)pk + row * ks0 + kv * ks1, ks2, (float*)pv + row * vs0 + kv * vs1, vs2,
                        pm == 0 ? null : (bool*)pm + (long)row * s, s, d, sc, cap, p, (float*)py + (long)pair * d);
                }
        }
        if (parts <= 1) Pairs(0, pairs);
        else
        {
            int per = (pairs + parts - 1) / parts;
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p => Pairs(p * per, Math.Min(pairs, (p + 1) * per)));
        }
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The address of a strided view's first element, valid while the tensor lives: the span the view covers, taken as
    /// a contiguous 1-D alias of the same storage (a cache slice is not contiguous itself).
    /// </summary>
    static nint First(Tensor t)
    {
        long extent = 1;
        for (int i = 0; i < t.dim(); i++) extent += (t.shape[i] - 1) * t.stride(i);
        using var span = t.as_strided([extent], [1], t.storage_offset());
        fixed (byte* p = span.bytes) return (nint)p;
    }

    /// <summary>One query against its S keys and values: scores, softmax, weighted sum of the values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void One(float* q, float* k, long kStride, float* v, long vStride, bool* allowed, int s, int d, float scale, float cap, float* scores, float* y)
    {
        float max = float.NegativeInfinity;
        for (int j = 0; j < s; j++)
        {
            float* key = k + j * kStride;
            var acc = Vector256<float>.Zero;
            for (int c = 0; c < d; c += 8) acc = Fma.MultiplyAdd(Avx.LoadVector256(q + c), Avx.LoadVector256(key + c), acc);
            float score = Vector256.Sum(acc) * scale;
            if (cap != 0f) score = cap * MathF.Tanh(score / cap);
            if (allowed != null && !allowed[j]) score = float.NegativeInfinity;
            scores[j] = score;
            if (score > max) max = score;
        }
        float sum = 0f;
        for (int j = 0; j < s; j++) { float e = MathF.Exp(scores[j] - max); scores[j] = e; sum += e; }
        float inv = 1f / sum;
        for (int c = 0; c < d; c += 8)
        {
            var acc = Vector256<float>.Zero;
            for (int j = 0; j < s; j++) acc = Fma.MultiplyAdd(Vector256.Create(scores[j]), Avx.LoadVector256(v + j * vStride + c), acc);
            (acc * inv).Store(y + c);
        }
    }
}
