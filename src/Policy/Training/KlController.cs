namespace Rlft.Policy.Training;

/// <summary>The KL coefficient β used to shape rewards; adaptive or fixed.</summary>
internal interface IKlController
{
    double Value { get; }
    /// <summary>Feeds the observed KL (nats per sequence) after a batch of <paramref name="steps"/> samples.</summary>
    void Update(double observedKl, int steps);
}

/// <summary>A constant β.</summary>
internal sealed class FixedKlController(double value) : IKlController
{
    public double Value { get; private set; } = value;
    public void Update(double observedKl, int steps) { }
}

/// <summary>
/// Adaptive controller (Ziegler et al., 2019, "Fine-Tuning Language Models from Human Preferences"):
/// e = clip(KL/target − 1, −0.2, 0.2); β ← β·(1 + e·n/horizon).
/// </summary>
internal sealed class AdaptiveKlController : IKlController
{
    public double Value { get; private set; }
    public double Target { get; }
    public double Horizon { get; }

    public AdaptiveKlController(double initial, double target, double horizon)
    {
        if (initial <= 0) throw new ArgumentOutOfRangeException(nameof(initial), "initial KL coefficient must be > 0");
        if (target <= 0) throw new ArgumentOutOfRangeException(nameof(target), "KL target must be > 0");
        if (horizon <= 0) throw new ArgumentOutOfRangeException(nameof(horizon), "KL horizon must be > 0");
        (Value, Target, Horizon) = (initial, target, horizon);
    }

    /// <summary>Restores a saved coefficient (resume).</summary>
    public void Restore(double value) => Value = value;

    public void Update(double observedKl, int steps)
    {
        double error = Math.Clamp(observedKl / Target - 1.0, -0.2, 0.2);
        Value *= 1.0 + error * steps / Horizon;
    }
}
