using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Generation;

/// <summary>Chooses the next token from last-position logits (B, V).</summary>
internal static class Sampler
{
    /// <summary>
    /// Returns token (B,) int64, model log-prob (B,), sampled-distribution log-prob (B,). <paramref name="uniforms"/>
    /// holds one draw in [0, 1) per row (each from its sequence's <see cref="SequenceRandom"/>); greedy ignores it.
    /// </summary>
    public static (Tensor Token, Tensor LogProb, Tensor SampledLogProb) Next(Tensor logits, GenerationOptions o, float[] uniforms)
    {
        using var scope = NewDisposeScope();
        logits = logits.to(ScalarType.Float32);
        Tensor token, sampled;
        if (o.Temperature == 0)
        {
            token = logits.argmax(-1, keepdim: true);                                   // (B, 1)
            sampled = zeros(logits.shape[0], device: logits.device);
        }
        else
        {
            var l = o.Temperature == 1.0 ? logits : logits / o.Temperature;            // (B, V)
            long v = l.shape[1];
            if (o.TopK > 0 && o.TopK < v)
            {
                var kth = l.topk(o.TopK, dim: -1).values.narrow(1, o.TopK - 1, 1);     // (B, 1)
                l = l.masked_fill(l < kth, float.NegativeInfinity);
            }
            if (o.TopP < 1.0)
            {
                var (sortedL, order) = l.sort(-1, descending: true);                    // (B, V)
                var probs = sortedL.softmax(-1);
                // Drop a token when the mass before it already reaches p; the most likely token always stays.
                var remove = (probs.cumsum(-1) - probs) >= o.TopP;
                sortedL = sortedL.masked_fill(remove, float.NegativeInfinity);
                l = full_like(l, float.NegativeInfinity).scatter(-1, order, sortedL);
            }
            var logp = l.log_softmax(-1);                                               // (B, V)
            // Inverse-CDF sampling: one uniform per row instead of multinomial's one random number per
            // vocabulary entry (~10× cheaper per step here). A zero-probability token can never be chosen:
            // searchsorted(right) returns the first index whose CDF exceeds u, which needs positive mass.
            var cdf = logp.exp().cumsum(-1);                                            // (B, V)
            if (uniforms.Length != l.shape[0]) throw new ArgumentException($"{uniforms.Length} uniforms for {l.shape[0]} rows");
            var u = tensor(uniforms, [l.shape[0], 1], device: l.device) * cdf.narrow(1, v - 1, 1);     // (B, 1)
            token = searchsorted(cdf, u, false, true).clamp_max(v - 1);                 // (B, 1)
            sampled = logp.gather(-1, token).squeeze(-1);
        }
        var lp = LogProbs.OfTargets(logits, token.squeeze(-1));                         // (B,)
        return (token.squeeze(-1).MoveToOuterDisposeScope(), lp.MoveToOuterDisposeScope(), sampled.MoveToOuterDisposeScope());
    }
}
