using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Reward.Pipeline;

namespace Rlft.Tests.Reward;

/// <summary>Running moments, whitening and clipping: the numeric building blocks of normalisation.</summary>
[Properties(Arbitrary = [typeof(RewardArbitraries)], MaxTest = 200)]
public class StatisticsProperties
{
    static bool Close(double a, double b, double scale) => Math.Abs(a - b) <= 1e-9 * Math.Max(1, scale);

    static double TwoPassVariance(double[] v)
    {
        double mean = v.Average();
        return v.Sum(x => (x - mean) * (x - mean)) / v.Length;
    }

    [Property]
    public Property Whitening_gives_mean_zero_and_unit_std(Scores s)
    {
        bool varied = s.Values.Distinct().Count() > 1;
        var w = Whitening.Whiten(s.Values);
        double mean = w.Average(), std = Math.Sqrt(w.Sum(x => (x - mean) * (x - mean)) / w.Length);
        return (Math.Abs(mean) < 1e-9 && Math.Abs(std - 1) < 1e-9).When(varied && TwoPassVariance(s.Values) > 1e-6);
    }

    [Property]
    public bool A_constant_batch_whitens_to_zeros_never_NaN(double value, PositiveInt count)
    {
        if (!double.IsFinite(value)) value = 0;
        var w = Whitening.Whiten(Enumerable.Repeat(value, Math.Min(count.Get, 50)).ToArray());
        return w.All(x => x == 0);
    }

    [Property]
    public bool Running_moments_equal_two_pass_moments_however_the_stream_is_split(SplitStream s)
    {
        var merged = s.Batches().Aggregate(RunningMoments.Empty, (m, b) => m.Add(b));
        if (s.Values.Length == 0) return merged.Count == 0;
        double scale = s.Values.Max(Math.Abs);
        return merged.Count == s.Values.Length
            && Close(merged.Mean, s.Values.Average(), scale)
            && Close(merged.Variance, TwoPassVariance(s.Values), scale * scale);
    }

    [Property]
    public bool Merging_moments_is_associative(Scores a, Scores b, Scores c)
    {
        RunningMoments ma = RunningMoments.Of(a.Values), mb = RunningMoments.Of(b.Values), mc = RunningMoments.Of(c.Values);
        var left = ma.Merge(mb).Merge(mc);
        var right = ma.Merge(mb.Merge(mc));
        double scale = a.Values.Concat(b.Values).Concat(c.Values).Max(Math.Abs);
        return left.Count == right.Count && Close(left.Mean, right.Mean, scale) && Close(left.M2, right.M2, scale * scale * left.Count);
    }

    [Property]
    public bool Merging_moments_is_commutative(Scores a, Scores b)
    {
        RunningMoments ma = RunningMoments.Of(a.Values), mb = RunningMoments.Of(b.Values);
        RunningMoments ab = ma.Merge(mb), ba = mb.Merge(ma);
        double scale = a.Values.Concat(b.Values).Max(Math.Abs);
        return ab.Count == ba.Count && Close(ab.Mean, ba.Mean, scale) && Close(ab.M2, ba.M2, scale * scale * ab.Count);
    }

    static ClipRange Range(double a, double b) => new(Math.Min(a, b), Math.Max(a, b));

    [Property]
    public bool Clipping_is_idempotent(Scores s, NormalFloat lo, NormalFloat hi)
    {
        var clip = Range(lo.Get, hi.Get);
        return s.Values.All(x => clip.Apply(clip.Apply(x)) == clip.Apply(x));
    }

    [Property]
    public bool Clipping_stays_within_the_bounds(Scores s, NormalFloat lo, NormalFloat hi)
    {
        var clip = Range(lo.Get, hi.Get);
        return s.Values.All(x => clip.Apply(x) >= clip.Min && clip.Apply(x) <= clip.Max);
    }

    [Property]
    public bool Clipping_is_the_identity_inside_the_bounds(Scores s)
    {
        var clip = new ClipRange(s.Values.Min(), s.Values.Max());
        return s.Values.All(x => clip.Apply(x) == x);
    }
}
