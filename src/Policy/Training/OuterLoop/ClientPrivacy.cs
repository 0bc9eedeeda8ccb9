using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>
/// Client-level differential privacy for an outer loop (DP-FedAvg, McMahan et al., 2018, "Learning Differentially
/// Private Recurrent Language Models"): each participant's update is scaled to L2 norm at most <see cref="ClipNorm"/>,
/// the clipped updates are summed with equal weight, Gaussian noise of standard deviation
/// <see cref="NoiseMultiplier"/> · <see cref="ClipNorm"/> is added to the sum, and the sum is divided by the number of
/// participants. One client's whole data set then changes the noisy sum by at most <see cref="ClipNorm"/>, which is
/// what <see cref="RdpAccountant"/> accounts for. Weighting by sample counts is given up under DP: a weight would let
/// one client's contribution exceed the clip.
/// </summary>
public sealed record ClientPrivacy
{
    public double ClipNorm { get; }
    public double NoiseMultiplier { get; }
    public double Delta { get; }

    public ClientPrivacy(double clipNorm, double noiseMultiplier, double delta)
    {
        if (!(clipNorm > 0) || double.IsInfinity(clipNorm)) throw new ArgumentOutOfRangeException(nameof(clipNorm), $"privacy.clip-norm must be a finite number > 0, got {clipNorm}");
        if (!(noiseMultiplier >= 0) || double.IsInfinity(noiseMultiplier)) throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), $"privacy.noise-multiplier must be a finite number >= 0, got {noiseMultiplier}");
        if (!(delta > 0 && delta < 1)) throw new ArgumentOutOfRangeException(nameof(delta), $"privacy.delta must be in (0, 1), got {delta}");
        (ClipNorm, NoiseMultiplier, Delta) = (clipNorm, noiseMultiplier, delta);
    }

    /// <summary>Scales <paramref name="update"/> in place to norm at most <see cref="ClipNorm"/>; returns its norm before clipping.</summary>
    internal double Clip(WeightSet update) => Clip(update, ClipNorm);

    /// <summary>Scales <paramref name="update"/> in place to norm at most <paramref name="clipNorm"/> (a client clipping before it sends); returns its norm before.</summary>
    internal static double Clip(WeightSet update, double clipNorm)
    {
        double norm = update.Norm();
        if (norm > clipNorm) update.Scale(clipNorm / norm);
        return norm;
    }

    /// <summary>
    /// Adds N(0, (σ·C·<paramref name="scale"/>)²) to every element of <paramref name="sum"/>, drawn on the CPU from
    /// <paramref name="generator"/>: scale 1 on a sum, 1/n on the mean of n clipped updates.
    /// </summary>
    internal void AddNoise(WeightSet sum, Generator generator, double scale = 1)
    {
        if (NoiseMultiplier == 0) return;
        using var _ = no_grad();
        foreach (var (_, value) in sum.Items)
        {
            using var scope = NewDisposeScope();
            var noise = randn(value.shape, dtype: ScalarType.Float32, generator: generator).to(value.dtype, value.device);
            value.add_(noise, alpha: NoiseMultiplier * ClipNorm * scale);
        }
    }
}
