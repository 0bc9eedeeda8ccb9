namespace Rlft.Reward.Pipeline;

/// <summary>
/// Count, mean and sum of squared deviations (M2) of a stream, mergeable across batches and nodes
/// with the parallel update of Chan, Golub and LeVeque (1979); a single value is Welford's update.
/// Immutable, so a node can ship its moments in a message and the receiver merges them.
/// </summary>
internal readonly record struct RunningMoments(long Count, double Mean, double M2)
{
    public static readonly RunningMoments Empty = default;

    /// <summary>Population variance (M2 / n); 0 for fewer than two values.</summary>
    public double Variance => Count > 1 ? Math.Max(0, M2 / Count) : 0;

    public double Std => Math.Sqrt(Variance);

    public static RunningMoments Of(ReadOnlySpan<double> values)
    {
        // Two-pass within a batch (exact for the batch), then merged: stable for long streams.
        if (values.Length == 0) return Empty;
        double mean = 0;
        foreach (var v in values) mean += v;
        mean /= values.Length;
        double m2 = 0;
        foreach (var v in values) m2 += (v - mean) * (v - mean);
        return new RunningMoments(values.Length, mean, m2);
    }

    public RunningMoments Add(ReadOnlySpan<double> values) => Merge(Of(values));

    /// <summary>Chan et al.: δ = μ_b − μ_a, μ = μ_a + δ·n_b/n, M2 = M2_a + M2_b + δ²·n_a·n_b/n.</summary>
    public RunningMoments Merge(RunningMoments other)
    {
        if (other.Count == 0) return this;
        if (Count == 0) return other;
        long n = Count + other.Count;
        double delta = other.Mean - Mean;
        double mean = Mean + delta * other.Count / n;
        double m2 = M2 + other.M2 + delta * delta * ((double)Count * other.Count / n);
        return new RunningMoments(n, mean, m2);
    }
}
