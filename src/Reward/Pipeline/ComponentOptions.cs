namespace Rlft.Reward.Pipeline;

public enum MissingAction { Drop, Substitute }

/// <summary>What to do when a component has no finite score for a sample (failure, NaN, ∞, timeout).</summary>
public readonly record struct MissingPolicy(MissingAction Action, double Value)
{
    /// <summary>Leave the sample out of the batch, with the component and reason recorded.</summary>
    public static readonly MissingPolicy Drop = new(MissingAction.Drop, 0);

    /// <summary>Use <paramref name="value"/> (finite) in place of the missing score.</summary>
    public static MissingPolicy Substitute(double value) =>
        double.IsFinite(value) ? new(MissingAction.Substitute, value) : throw new ArgumentOutOfRangeException(nameof(value), value, "substitute must be finite");
}

/// <summary>
/// One term of the reward: <c>Weight · clip(normalise(score))</c>.
/// Defaults: no normalisation, no clipping, drop samples the source could not score.
/// </summary>
public sealed record ComponentOptions(string Name, double Weight = 1)
{
    public Normalization Normalization { get; init; } = Normalization.None;
    public ClipRange Clip { get; init; } = ClipRange.Unbounded;
    public MissingPolicy Missing { get; init; } = MissingPolicy.Drop;
}

/// <summary>A source and how its scores enter the total.</summary>
internal sealed record RewardComponent(IRewardSource Source, ComponentOptions Options);
