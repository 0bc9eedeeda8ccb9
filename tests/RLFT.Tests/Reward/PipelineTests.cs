using Rlft.Reward;
using Rlft.Reward.Pipeline;
using Rlft.Reward.Sources;

namespace Rlft.Tests.Reward;

public class PipelineTests
{
    sealed class Broken : IRewardSource
    {
        public string Name => "broken";
        public Task<SourceScores> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct) => throw new InvalidOperationException("disk on fire");
    }

    static SourceScores Fixed(params double[] v) => new("s", v.Select(SampleScore.Ok).ToArray());

    [Fact]
    public async Task Components_are_reported_and_a_throwing_source_costs_only_its_scores()
    {
        var pipeline = new RewardPipeline(
        [
            new(RuleRewards.NumericMatch(), new ComponentOptions("correct", 2)),
            new(new Broken(), new ComponentOptions("broken", 1) { Missing = MissingPolicy.Substitute(-0.5) }),
        ], new ClipRange(-1, 1.2));
        var scored = await pipeline.ScoreAsync([new("q", "42", "42"), new("q", "41", "42"), new("q", "x")], TestContext.Current.CancellationToken);
        var (a, b, c) = (scored.Samples[0], scored.Samples[1], scored.Samples[2]);
        Assert.Equal(1.2, a.Total); // 2·1 − 0.5, clipped at 1.2
        Assert.Equal(-0.5, b.Total);
        Assert.Equal("correct: no reference answer", c.DroppedReason);
        Assert.Equal(new ComponentScore("broken", null, -0.5, -0.5, "source failed: disk on fire"), a.Components[1]);
        Assert.Equal(new ComponentScore("correct", 1, 1, 2, null), a.Components[0]);
        var metrics = scored.Metrics();
        Assert.Equal(1, metrics["reward/dropped"]);
        Assert.Equal(3, metrics["reward/broken/failed"]);
        Assert.Equal(0.35, metrics["reward/total/mean"], 12);
    }

    [Fact]
    public void Running_normalisation_continues_across_batches_and_merges_across_nodes()
    {
        ComponentOptions[] options = [new("s") { Normalization = Normalization.Running }];
        var single = new RewardCombiner(options);
        single.Combine([Fixed(1, 2, 3)]);
        var last = single.Combine([Fixed(4, 5)]).Samples.Select(s => s.Total!.Value).ToArray();
        // Over 1..5: mean 3, population std √2.
        Assert.Equal([1 / Math.Sqrt(2), 2 / Math.Sqrt(2)], last, (x, y) => Math.Abs(x - y) < 1e-12);

        var nodeA = new RewardCombiner(options);
        var nodeB = new RewardCombiner(options);
        nodeA.Combine([Fixed(1, 2)]);
        nodeB.Combine([Fixed(3, 4, 5)]);
        nodeA.MergeMoments(nodeB.Moments);
        Assert.Equal(5, nodeA.Moments["s"].Count);
        Assert.Equal(3, nodeA.Moments["s"].Mean, 12);
        Assert.Equal(2, nodeA.Moments["s"].Variance, 12);
    }

    [Fact]
    public void Batch_whitening_ignores_dropped_samples()
    {
        var combiner = new RewardCombiner([new("s") { Normalization = Normalization.Batch }]);
        var scored = combiner.Combine([new SourceScores("s", [SampleScore.Ok(1), SampleScore.Fail("no"), SampleScore.Ok(3)])]);
        Assert.Equal([-1.0, null, 1.0], scored.Samples.Select(s => s.Total));
    }

    [Fact]
    public void Bad_component_options_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new RewardCombiner([new("a"), new("a")]));
        Assert.Throws<ArgumentException>(() => new RewardCombiner([new("a", double.NaN)]));
        Assert.Throws<ArgumentException>(() => new RewardCombiner([new("a") { Clip = new ClipRange(1, 0) }]));
        Assert.Throws<ArgumentOutOfRangeException>(() => MissingPolicy.Substitute(double.PositiveInfinity));
    }

    [Fact]
    public void Kl_shaping_matches_a_hand_computation()
    {
        // δ = ref − logp = [−0.5, 1]; k1 = −δ = [0.5, −1]; r = −0.1·k1, plus the score 2 at the last token.
        var r = KlShaping.Shape([-1f, -2f], [-1.5f, -1f], score: 2f, beta: 0.1f, KlEstimator.K1);
        Assert.Equal(-0.05f, r[0], 6);
        Assert.Equal(2.1f, r[1], 6);
        Assert.Equal(Math.E - 2, KlShaping.Kl(-2, -1, KlEstimator.K3), 12);
        Assert.Equal(0.125, KlShaping.Kl(-1, -1.5, KlEstimator.K2), 12);
        Assert.Equal(KlShaping.K3Clamp, KlShaping.Kl(-30, 0, KlEstimator.K3));
        Assert.Throws<ArgumentException>(() => KlShaping.Shape([], [], 1, 0.1f, KlEstimator.K3));
        Assert.Throws<ArgumentException>(() => KlShaping.Shape([-1f], [-1f, -2f], 1, 0.1f, KlEstimator.K3));
    }
}
