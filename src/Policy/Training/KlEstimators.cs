using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>Sample estimators of KL(π‖π_ref) per token (Schulman, "Approximating KL divergence", 2020).</summary>
public enum KlEstimator
{
    /// <summary>k1 = logπ − logπ_ref: unbiased, high variance, can be negative.</summary>
    K1,
    /// <summary>k2 = ½(logπ − logπ_ref)²: biased, low variance, non-negative.</summary>
    K2,
    /// <summary>k3 = exp(δ) − δ − 1 with δ = logπ_ref − logπ: unbiased, non-negative, low variance.</summary>
    K3,
}

internal static class Kl
{
    /// <summary>Clamp applied to k3 as veRL does, so one extreme token cannot dominate.</summary>
    public const double K3Clamp = 10.0;

    /// <summary>Per-token KL estimate; (B, T) log-probs of the sampled tokens → (B, T).</summary>
    public static Tensor Estimate(Tensor logp, Tensor logpRef, KlEstimator estimator)
    {
        var diff = logp - logpRef;                       // (B, T) log π − log π_ref
        return estimator switch
        {
            KlEstimator.K1 => diff,
            KlEstimator.K2 => 0.5 * diff * diff,
            KlEstimator.K3 => (exp(-diff) + diff - 1.0).clamp(-K3Clamp, K3Clamp),
            _ => throw new ArgumentOutOfRangeException(nameof(estimator), estimator, "unknown KL estimator"),
        };
    }
}
