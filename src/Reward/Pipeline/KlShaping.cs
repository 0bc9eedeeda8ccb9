namespace Rlft.Reward.Pipeline;

/// <summary>
/// Sample estimators of KL(π‖π_ref) per token, with δ = logp_ref − logp (Schulman, "Approximating KL
/// divergence", 2020): k1 = −δ (unbiased, can be negative), k2 = δ²/2, k3 = exp(δ) − δ − 1 (unbiased, ≥ 0).
/// </summary>
internal enum KlEstimator { K1, K2, K3 }

internal static class KlShaping
{
    /// <summary>k3 is clamped to this bound, as veRL does, so one wild token cannot swamp the batch.</summary>
    public const double K3Clamp = 10;

    /// <summary>The per-token estimate for one token's policy and reference log-probabilities.</summary>
    public static double Kl(double logp, double logpRef, KlEstimator estimator)
    {
        double delta = logpRef - logp;
        return estimator switch
        {
            KlEstimator.K1 => -delta,
            KlEstimator.K2 => 0.5 * delta * delta,
            KlEstimator.K3 => Math.Clamp(Math.Exp(delta) - delta - 1, -K3Clamp, K3Clamp),
            _ => throw new ArgumentOutOfRangeException(nameof(estimator)),
        };
    }

    /// <summary>Per-token KL estimates over a response (T,) → (T,).</summary>
    public static float[] PerTokenKl(ReadOnlySpan<float> logp, ReadOnlySpan<float> logpRef, KlEstimator estimator)
    {
        if (logp.Length != logpRef.Length) throw new ArgumentException($"logp has {logp.Length} tokens, logp_ref {logpRef.Length}");
        var kl = new float[logp.Length];
        for (int t = 0; t < kl.Length; t++) kl[t] = (float)Kl(logp[t], logpRef[t], estimator);
        return kl;
    }

    /// <summary>
    /// InstructGPT-style shaped rewards over the response tokens (T,): r_t = −β·kl_t, plus the sequence
    /// <paramref name="score"/> at the last response token, so Σ r_t = score − β·Σ kl_t.
    /// </summary>
    public static float[] Shape(float[] logp, float[] logpRef, float score, float beta, KlEstimator estimator)
    {
        if (logp.Length == 0) throw new ArgumentException("a response needs at least one token to carry its score", nameof(logp));
        if (!float.IsFinite(score)) throw new ArgumentOutOfRangeException(nameof(score), score, "score must be finite");
        var kl = PerTokenKl(logp, logpRef, estimator);
        var rewards = new float[kl.Length];
        for (int t = 0; t < kl.Length; t++) rewards[t] = -beta * kl[t];
        rewards[^1] += score;
        return rewards;
    }
}
