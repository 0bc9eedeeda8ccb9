namespace Rlft.Reward.Pipeline;

/// <summary>How a component's scores are rescaled before weighting.</summary>
public enum Normalization
{
    /// <summary>As the source gave them.</summary>
    None,
    /// <summary>(x − μ)/σ with μ, σ from every score seen so far (this batch included), mergeable across nodes.</summary>
    Running,
    /// <summary>(x − μ)/σ over this batch only.</summary>
    Batch,
}

/// <summary>A closed interval; <see cref="Unbounded"/> leaves values alone.</summary>
public readonly record struct ClipRange(double Min, double Max)
{
    public static readonly ClipRange Unbounded = new(double.NegativeInfinity, double.PositiveInfinity);

    public ClipRange Validate()
    {
        if (double.IsNaN(Min) || double.IsNaN(Max) || Min > Max) throw new ArgumentException($"clip range [{Min}, {Max}] is empty");
        return this;
    }

    /// <summary>Idempotent, within [Min, Max], the identity inside; NaN is not clipped (callers filter it first).</summary>
    internal double Apply(double x) => x < Min ? Min : x > Max ? Max : x;
}

internal static class Whitening
{
    /// <summary>Below this relative spread a batch counts as constant: whitening it would amplify rounding noise.</summary>
    const double ConstantTolerance = 1e-9;

    /// <summary>(x − mean)/std with population std; a constant (or single-value) batch maps to zeros.</summary>
    public static double[] Whiten(ReadOnlySpan<double> values) => Standardize(values, RunningMoments.Of(values));

    /// <summary>(x − μ)/σ with given moments; zeros where σ is negligible against μ. Never NaN for finite input.</summary>
    public static double[] Standardize(ReadOnlySpan<double> values, RunningMoments moments)
    {
        var result = new double[values.Length];
        double std = moments.Std;
        if (!(std > ConstantTolerance * Math.Max(1, Math.Abs(moments.Mean)))) return result;
        for (int i = 0; i < values.Length; i++) result[i] = (values[i] - moments.Mean) / std;
        return result;
    }
}
