using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Reward;
using Rlft.Reward.Pipeline;
using Rlft.Reward.Sources;

namespace Rlft.Tests.Reward;

/// <summary>Composition and the missing-value policy, on the combiner and on a pipeline of real rule sources.</summary>
[Properties(Arbitrary = [typeof(RewardArbitraries)], MaxTest = 200)]
public class PipelineProperties
{
    static SourceScores[] AsSources(double[][] values) =>
        values.Select((v, c) => new SourceScores($"c{c}", v.Select(SampleScore.Ok).ToArray())).ToArray();

    static double[] Totals(double[][] values, double[] weights) =>
        new RewardCombiner(weights.Select((w, c) => new ComponentOptions($"c{c}", w)).ToArray())
            .Combine(AsSources(values)).Samples.Select(s => s.Total!.Value).ToArray();

    static bool Close(double a, double b) => Math.Abs(a - b) <= 1e-9 * Math.Max(1, Math.Max(Math.Abs(a), Math.Abs(b)));

    [Property]
    public bool The_total_is_the_weighted_sum_of_components(ScoreMatrix m)
    {
        var totals = Totals(m.Values, m.Weights);
        return totals.Select((t, i) => Close(t, m.Values.Select((v, c) => m.Weights[c] * v[i]).Sum())).All(x => x);
    }

    [Property]
    public bool The_total_is_additive_in_the_components(ScoreMatrix a, ScoreMatrix b)
    {
        // Same shape: take b's scores cut to a's shape (cycled), so total(a + b) = total(a) + total(b).
        var bv = a.Values.Select((row, c) => row.Select((_, i) => b.Values[c % b.Values.Length][i % b.Samples]).ToArray()).ToArray();
        var sum = a.Values.Select((row, c) => row.Select((x, i) => x + bv[c][i]).ToArray()).ToArray();
        var (ta, tb, tsum) = (Totals(a.Values, a.Weights), Totals(bv, a.Weights), Totals(sum, a.Weights));
        return tsum.Select((t, i) => Close(t, ta[i] + tb[i])).All(x => x);
    }

    [Property]
    public bool The_total_is_linear_in_the_weights(ScoreMatrix m, ScoreMatrix other, NonNegativeInt scale)
    {
        var w2 = m.Weights.Select((_, c) => other.Weights[c % other.Weights.Length]).ToArray();
        double k = scale.Get % 7;
        var combined = m.Weights.Select((w, c) => w + k * w2[c]).ToArray();
        var (t1, t2, t) = (Totals(m.Values, m.Weights), Totals(m.Values, w2), Totals(m.Values, combined));
        return t.Select((x, i) => Close(x, t1[i] + k * t2[i])).All(x => x);
    }

    [Property]
    public bool NaN_and_infinity_in_any_component_never_reach_the_output(CorruptScores s)
    {
        var combiner = new RewardCombiner(s.Options);
        var sources = s.Values.Select((v, c) => new SourceScores($"c{c}", v.Select(SampleScore.Ok).ToArray())).ToArray();
        // Twice, so running moments carried over from a corrupt batch are exercised too.
        var batches = new[] { combiner.Combine(sources), combiner.Combine(sources) };
        return batches.SelectMany(b => b.Samples).All(x =>
            (x.Total is null ? x.DroppedReason is not null : double.IsFinite(x.Total.Value))
            && x.Components.All(c => (c.Value is null || double.IsFinite(c.Value.Value)) && (c.Weighted is null || double.IsFinite(c.Weighted.Value))));
    }

    [Property]
    public bool Drop_removes_exactly_the_samples_with_a_missing_score_and_substitute_removes_none(CorruptScores s)
    {
        var options = s.Options.Select(o => o with { Normalization = Normalization.None, Clip = ClipRange.Unbounded, Weight = 1 }).ToArray();
        var sources = s.Values.Select((v, c) => new SourceScores($"c{c}", v.Select(SampleScore.Ok).ToArray())).ToArray();
        var result = new RewardCombiner(options).Combine(sources).Samples;
        return result.Select((sample, i) =>
        {
            bool missingUnderDrop = options.Where((o, c) => o.Missing.Action == MissingAction.Drop && !double.IsFinite(s.Values[c][i])).Any();
            if (missingUnderDrop) return sample.Dropped && sample.DroppedReason!.Contains(SampleScore.NonFinite, StringComparison.Ordinal);
            bool overflow = options.Select((o, c) => double.IsFinite(s.Values[c][i]) ? s.Values[c][i] : o.Missing.Value).Sum() is var t && !double.IsFinite(t);
            return overflow ? sample.Dropped : !sample.Dropped && sample.Components.Select((c, j) =>
                double.IsFinite(s.Values[j][i]) ? c.Value == s.Values[j][i] : c.Value == options[j].Missing.Value).All(x => x);
        }).All(x => x);
    }

    static RewardPipeline RulePipeline() => new(
    [
        new(RuleRewards.ExactMatch(), new ComponentOptions("exact-match", 1)),
        new(RuleRewards.NumericMatch(), new ComponentOptions("numeric-match", 0.5) { Missing = MissingPolicy.Substitute(0) }),
        new(RuleRewards.TargetLength(5), new ComponentOptions("length", 0.25) { Clip = new ClipRange(0, 0.8) }),
        new(RuleRewards.RepetitionPenalty(2), new ComponentOptions("repetition", 2)),
        new(RuleRewards.Regex("[0-9]+"), new ComponentOptions("regex", 1)),
    ]);

    [Property]
    public async Task<bool> Rule_rewards_are_equivariant_under_permutation_of_the_batch(AnswerPair[] answers, int seed)
    {
        if (answers.Length == 0) return true;
        var batch = answers.Select((a, i) => new RewardSample($"p{i}", a.Written, i % 3 == 0 ? null : a.Reference)).ToArray();
        var order = RatingProperties.Shuffled(Enumerable.Range(0, batch.Length).ToArray(), seed);
        var direct = await RulePipeline().ScoreAsync(batch, TestContext.Current.CancellationToken);
        var permuted = await RulePipeline().ScoreAsync(order.Select(i => batch[i]).ToArray(), TestContext.Current.CancellationToken);
        return order.Select((original, j) => direct.Samples[original].Total == permuted.Samples[j].Total
            && direct.Samples[original].DroppedReason == permuted.Samples[j].DroppedReason).All(x => x);
    }
}
