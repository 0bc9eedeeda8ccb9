using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>Attention over projected heads, shared by the decoder families: grouped KV heads, mask, scale, soft-cap.</summary>
internal static class AttentionKernel
{
    /// <summary>
    /// softmax(scale · q kᵀ [soft-capped] + mask) v. q: (B, nh, T, D); k, v: (B, kv, S, D) with kv dividing nh
    /// (query head h reads KV head h / (nh / kv), transformers' repeat_kv) → (B, nh, T, D).
    /// <paramref name="scale"/> null means D^-½; with neither a scale nor a cap this is one fused SDPA call,
    /// otherwise the scores are formed explicitly as transformers' eager_attention_forward does:
    /// scores · scale, then cap · tanh(scores / cap), then the mask.
    /// </summary>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, AttentionMask mask, double? scale = null, double? softcap = null)
    {
        using var scope = NewDisposeScope();
        // A decoding step's single query per sequence: RLFT's kernel reads the cache's views in place.
        if (DecodeAttention.Applies(q, k, v, mask)) return DecodeAttention.Apply(q, k, v, mask, scale, softcap).MoveToOuterDisposeScope();
        int groups = (int)(q.shape[1] / k.shape[1]);
        k = RepeatKv(k, groups);                                                     // (B, nh, S, D)
        v = RepeatKv(v, groups);
        if (scale is null && softcap is null)
            return F.scaled_dot_product_attention(q, k, v, mask.Mask, is_casual: mask.Causal).MoveToOuterDisposeScope();
        long t = q.shape[2], s = k.shape[2];
        var scores = q.matmul(k.transpose(-2, -1)) * (scale ?? 1.0 / Math.Sqrt(q.shape[^1]));   // (B, nh, T, S)
        if (softcap is double cap) scores = (scores / cap).tanh() * cap;
        Tensor? allowed = mask.Mask;                                                 // (B, 1, T, S) bool
        if (allowed is null && mask.Causal) allowed = ones(t, s, dtype: ScalarType.Bool, device: q.device).tril(s - t);
        if (allowed is not null) scores = scores.masked_fill(allowed.logical_not(), double.NegativeInfinity);
        var weights = scores.softmax(-1, ScalarType.Float32).to(q.dtype);          // (B, nh, T, S)
        return weights.matmul(v).MoveToOuterDisposeScope();                          // (B, nh, T, D)
    }

    /// <summary>(B, kv, S, D) → (B, kv·n, S, D), each KV head repeated n times in place (head i uses kv head i / n).</summary>
    public static Tensor RepeatKv(Tensor x, int n)
    {
        if (n == 1) return x;
        long b = x.shape[0], kv = x.shape[1], s = x.shape[2], d = x.shape[3];
        return x.unsqueeze(2).expand(b, kv, n, s, d).reshape(b, kv * n, s, d);
    }
}
