using Rlft.Policy.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

public class ObjectiveMathTests
{
    static Tensor T(params float[] v) => tensor(v);
    static Tensor T2(float[] v, long cols) => tensor(v).view(-1, cols);
    static float[] A(Tensor t) => t.detach().cpu().to(ScalarType.Float32).data<float>().ToArray();

    [Fact]
    public void Gae_matches_a_hand_computed_four_token_example_and_ignores_padding()
    {
        using var _ = NewDisposeScope();
        // Four response tokens then one padding position.
        var rewards = T2([0, 0, 0, 1, 9], 5);
        var values = T2([0.5f, 0.4f, 0.3f, 0.2f, 7], 5);
        var mask = T2([1, 1, 1, 1, 0], 5);
        var (adv, ret) = Advantages.Gae(rewards, values, mask, gamma: 1.0, lambda: 0.95);
        // δ3 = 1 − 0.2 = 0.8; δ2 = 0.2 − 0.3; A2 = −0.1 + 0.95·0.8 = 0.66; A1 = −0.1 + 0.95·0.66 = 0.527; A0 = −0.1 + 0.95·0.527
        float[] expected = [0.40065f, 0.527f, 0.66f, 0.8f, 0];
        Assert.Equal(expected, A(adv), new FloatTolerance(1e-5f));
        Assert.Equal(new[] { 0.90065f, 0.927f, 0.96f, 1.0f, 0 }, A(ret), new FloatTolerance(1e-5f));
    }

    [Fact]
    public void Gae_with_discount_uses_gamma_in_the_bootstrap()
    {
        using var _ = NewDisposeScope();
        var (adv, _) = Advantages.Gae(T2([1, 2], 2), T2([0.5f, 1], 2), T2([1, 1], 2), gamma: 0.9, lambda: 1.0);
        // δ1 = 2 − 1 = 1 → A1 = 1; δ0 = 1 + 0.9·1 − 0.5 = 1.4 → A0 = 1.4 + 0.9·1 = 2.3
        Assert.Equal(new[] { 2.3f, 1f }, A(adv), new FloatTolerance(1e-6f));
    }

    [Fact]
    public void Whitening_gives_mean_zero_std_one_on_the_mask_and_zeros_for_a_constant_batch()
    {
        using var _ = NewDisposeScope();
        var w = A(Masked.Whiten(T2([1, 2, 3, 4, 100], 5), T2([1, 1, 1, 1, 0], 5)));
        // mean 2.5, unbiased std sqrt(5/3) = 1.290994
        Assert.Equal(new[] { -1.161895f, -0.387298f, 0.387298f, 1.161895f, 0f }, w, new FloatTolerance(1e-5f));
        var c = A(Masked.Whiten(T2([3, 3, 3], 3), T2([1, 1, 1], 3)));
        Assert.All(c, x => Assert.Equal(0f, x));
    }

    [Fact]
    public void Kl_estimators_match_their_formulas_and_vanish_when_policy_equals_reference()
    {
        using var _ = NewDisposeScope();
        var logp = T(MathF.Log(0.5f));
        var logRef = T(MathF.Log(0.25f));
        float d = MathF.Log(2f);
        Assert.Equal(d, A(Kl.Estimate(logp, logRef, KlEstimator.K1))[0], 6);
        Assert.Equal(d * d / 2, A(Kl.Estimate(logp, logRef, KlEstimator.K2))[0], 6);
        Assert.Equal(0.5f + d - 1, A(Kl.Estimate(logp, logRef, KlEstimator.K3))[0], 6);

        var random = randn(1000) - 2;
        foreach (var e in Enum.GetValues<KlEstimator>())
            Assert.All(A(Kl.Estimate(random, random, e)), x => Assert.Equal(0f, x));
        var other = randn(1000) - 2;
        Assert.All(A(Kl.Estimate(random, other, KlEstimator.K3)), x => Assert.True(x >= 0));
    }

    [Fact]
    public void Shaped_rewards_put_the_score_on_the_last_response_token()
    {
        using var _ = NewDisposeScope();
        var logp = T2([-1, -1, -1, -1, -2, -2, 0, 0], 4);
        var logRef = T2([-1.5f, -1, -1, -1, -2, -1, 0, 0], 4);
        var mask = T2([1, 1, 1, 1, 1, 1, 0, 0], 4);
        var (rewards, kl) = Advantages.ShapeRewards(logp, logRef, T(2, 3), mask, beta: 0.1, KlEstimator.K1);
        Assert.Equal(new[] { -0.05f, 0, 0, 2, 0, 0.1f + 3, 0, 0 }, A(rewards), new FloatTolerance(1e-6f));
        Assert.Equal(new[] { 0.5f, 0, 0, 0, 0, -1, 0, 0 }, A(kl), new FloatTolerance(1e-6f));
    }

    [Theory]
    [InlineData(1.0, 1.5, -1.2, 1.0)]   // positive advantage, ratio above 1+ε: clipped
    [InlineData(-1.0, 1.5, 1.5, 0.0)]   // negative advantage, ratio above 1+ε: unclipped wins
    [InlineData(1.0, 1.1, -1.1, 0.0)]   // inside the range: plain surrogate
    [InlineData(-2.0, 0.5, 1.6, 1.0)]   // negative advantage, ratio below 1−ε: clipped at 0.8
    public void Clipped_policy_loss_inside_and_outside_the_range(double adv, double ratio, double expectedLoss, double expectedClipFrac)
    {
        using var _ = NewDisposeScope();
        var logpOld = T(-1f);
        var logp = T((float)(-1 + Math.Log(ratio)));
        var r = Losses.PolicyLoss(logp, logpOld, T((float)adv), T(1f), 0.2, 0.2);
        Assert.Equal(expectedLoss, r.Loss.item<float>(), 5);
        Assert.Equal(expectedClipFrac, r.Stats["policy/clipfrac"], 5);
    }

    [Fact]
    public void Policy_loss_gradient_at_ratio_one_is_minus_advantage_times_grad_logp()
    {
        using var _ = NewDisposeScope();
        var logp = T2([-0.3f, -1.2f, -2f, -0.7f], 4).requires_grad_(true);
        var adv = T2([0.5f, -1f, 2f, 3f], 4);
        var mask = T2([1, 1, 1, 0], 4);
        var r = Losses.PolicyLoss(logp, logp.detach(), adv, mask, 0.2, 0.2);
        r.Loss.backward();
        // d/dlogp mean_masked(−A·exp(logp − logp_old)) at logp = logp_old: −A·mask / Σmask
        Assert.Equal(new[] { -0.5f / 3, 1f / 3, -2f / 3, 0f }, A(logp.grad!), new FloatTolerance(1e-6f));
    }

    [Fact]
    public void Clipped_value_loss_takes_the_pessimistic_branch()
    {
        using var _ = NewDisposeScope();
        // V moved from 0 to 1, return 2, ε_v = 0.2: unclipped (1−2)² = 1, clipped (0.2−2)² = 3.24 → ½·3.24
        var r = Losses.ValueLoss(T(1f), T(0f), T(2f), T(1f), 0.2);
        Assert.Equal(1.62f, r.Loss.item<float>(), 5);
        Assert.Equal(1.0, r.Stats["val/clipfrac"]);
    }

    [Fact]
    public void Dpo_loss_is_log_two_when_policy_equals_reference()
    {
        using var _ = NewDisposeScope();
        var c = T(-5, -7); var rj = T(-6, -4);
        var r = Losses.DpoLoss(c, rj, c, rj, beta: 0.1, DpoLossType.Sigmoid);
        Assert.Equal(MathF.Log(2), r.Loss.item<float>(), 6);
        Assert.Equal(0.0, r.Stats["rewards/margins"], 6);
    }

    [Fact]
    public void Ipo_and_cdpo_match_their_formulas()
    {
        using var _ = NewDisposeScope();
        // h = (−4 − (−5)) − (−6 − (−6)) = 1
        var c = T(-4f); var rj = T(-6f); var rc = T(-5f); var rr = T(-6f);
        double beta = 0.1;
        var ipo = Losses.DpoLoss(c, rj, rc, rr, beta, DpoLossType.Ipo);
        Assert.Equal(Math.Pow(1 - 1 / (2 * beta), 2), ipo.Loss.item<float>(), 4);
        var cdpo = Losses.DpoLoss(c, rj, rc, rr, beta, DpoLossType.Sigmoid, labelSmoothing: 0.1);
        double logSig(double x) => -Math.Log(1 + Math.Exp(-x));
        Assert.Equal(-0.9 * logSig(0.1) - 0.1 * logSig(-0.1), cdpo.Loss.item<float>(), 5);
        Assert.Equal(1.0, cdpo.Stats["rewards/accuracies"]);
        Assert.Equal(0.1, cdpo.Stats["rewards/margins"], 5);
    }

    [Fact]
    public void Reward_model_loss_is_bradley_terry_with_margin()
    {
        using var _ = NewDisposeScope();
        var r = Losses.RewardModelLoss(T(2f, 0f), T(1f, 1f), margin: T(0.5f, 0f));
        // −log σ(0.5) and −log σ(−1), averaged
        double expected = (Math.Log(1 + Math.Exp(-0.5)) + Math.Log(1 + Math.Exp(1))) / 2;
        Assert.Equal(expected, r.Loss.item<float>(), 5);
        Assert.Equal(0.5, r.Stats["rm/accuracy"]);
    }

    [Fact]
    public void Grpo_advantages_are_normalised_within_each_group()
    {
        using var _ = NewDisposeScope();
        var adv = A(Advantages.GroupNormalized(T(1, 2, 3, 5, 5, 5), 3));
        Assert.Equal(new[] { -1f, 0f, 1f, 0f, 0f, 0f }, adv, new FloatTolerance(1e-3f));
        Assert.Throws<ArgumentException>(() => Advantages.GroupNormalized(T(1, 2, 3, 4), 3));
        // Without scaling (Dr. GRPO): r − mean only; a lone failure in a solved group weighs −7/8, not −2.47.
        Assert.Equal(new[] { -1f, 0f, 1f, 0f, 0f, 0f }, A(Advantages.GroupNormalized(T(1, 2, 3, 5, 5, 5), 3, scale: false)), new FloatTolerance(1e-6f));
        Assert.Equal(new[] { 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, -0.875f },
            A(Advantages.GroupNormalized(T(1, 1, 1, 1, 1, 1, 1, 0), 8, scale: false)), new FloatTolerance(1e-6f));
        Assert.Equal(-0.875 / (Math.Sqrt(0.125) + 1e-4), A(Advantages.GroupNormalized(T(1, 1, 1, 1, 1, 1, 1, 0), 8))[7], 4);   // unbiased std √(1/8), eps 1e-4
    }

    [Fact]
    public void Adaptive_kl_moves_up_above_target_and_down_below()
    {
        var up = new AdaptiveKlController(0.1, target: 6, horizon: 10000);
        up.Update(observedKl: 12, steps: 100);
        Assert.Equal(0.1 * (1 + 0.2 * 100 / 10000.0), up.Value, 12);
        var down = new AdaptiveKlController(0.1, target: 6, horizon: 10000);
        down.Update(observedKl: 3, steps: 100);
        Assert.Equal(0.1 * (1 - 0.2 * 100 / 10000.0), down.Value, 12);   // e = clip(3/6 − 1) = −0.2
        var still = new FixedKlController(0.05);
        still.Update(100, 100);
        Assert.Equal(0.05, still.Value);
    }

    [Fact]
    public void Forward_kl_is_zero_for_identical_distributions_and_positive_otherwise()
    {
        using var _ = NewDisposeScope();
        var logits = randn(2, 3, 7);
        var mask = ones(2, 3);
        Assert.Equal(0f, Losses.ForwardKl(logits, logits, mask).Loss.item<float>(), 6);
        Assert.True(Losses.ForwardKl(randn(2, 3, 7), logits, mask).Loss.item<float>() > 0);
    }

    [Fact]
    public void Sft_loss_averages_completion_tokens_only()
    {
        using var _ = NewDisposeScope();
        var r = Losses.SftLoss(T2([-100f, -1f, -3f], 3), T2([0, 1, 1], 3));
        Assert.Equal(2f, r.Loss.item<float>(), 6);
    }

    [Fact]
    public void Options_refuse_out_of_range_values_naming_the_option()
    {
        Assert.StartsWith("ppo.clip-range:", Assert.Throws<OptionException>(() => new PpoOptions { ClipRange = 0 }.Validate()).Message);
        Assert.StartsWith("ppo.gamma:", Assert.Throws<OptionException>(() => new PpoOptions { Gamma = 1.5 }.Validate()).Message);
        Assert.StartsWith("grpo.group-size:", Assert.Throws<OptionException>(() => new GrpoOptions { GroupSize = 1 }.Validate()).Message);
        Assert.StartsWith("dpo.label-smoothing:", Assert.Throws<OptionException>(() => new DpoOptions { LabelSmoothing = 0.5 }.Validate()).Message);
        Assert.StartsWith("optimizer.lr:", Assert.Throws<OptionException>(() => new OptimizerOptions { LearningRate = -1 }.Validate()).Message);
        Assert.StartsWith("stage.lr:", Assert.Throws<OptionException>(() => new OptimizerOptions { LearningRate = 0 }.Validate("stage")).Message);
    }
}

/// <summary>Element-wise float comparison within an absolute tolerance.</summary>
public sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
{
    public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;
    public int GetHashCode(float obj) => 0;
}
