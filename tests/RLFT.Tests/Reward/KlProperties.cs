using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Reward.Pipeline;

namespace Rlft.Tests.Reward;

/// <summary>Per-token KL shaping: r_t = −β·kl_t with the sequence score at the last response token.</summary>
[Properties(Arbitrary = [typeof(RewardArbitraries)], MaxTest = 200)]
public class KlProperties
{
    static readonly KlEstimator[] Estimators = [KlEstimator.K1, KlEstimator.K2, KlEstimator.K3];

    [Property]
    public bool Shaped_rewards_sum_to_the_score_minus_beta_times_the_summed_kl(Response r)
    {
        return Estimators.All(est =>
        {
            var shaped = KlShaping.Shape(r.Logp, r.LogpRef, r.Score, r.Beta, est);
            double kl = r.Logp.Select((lp, t) => (double)(float)KlShaping.Kl(lp, r.LogpRef[t], est)).Sum();
            double expected = r.Score - r.Beta * kl;
            // float32 arithmetic per token: allow rounding proportional to the magnitudes summed.
            double tolerance = 1e-5 * (1 + Math.Abs(r.Score) + r.Beta * r.Logp.Select((lp, t) => Math.Abs(KlShaping.Kl(lp, r.LogpRef[t], est))).Sum());
            return Math.Abs(shaped.Select(x => (double)x).Sum() - expected) <= tolerance;
        });
    }

    [Property]
    public bool Only_the_last_token_carries_the_score(Response r)
    {
        var shaped = KlShaping.Shape(r.Logp, r.LogpRef, r.Score, r.Beta, KlEstimator.K3);
        var kl = KlShaping.PerTokenKl(r.Logp, r.LogpRef, KlEstimator.K3);
        return shaped.Take(shaped.Length - 1).Select((x, t) => x == -r.Beta * kl[t]).All(b => b)
            && Math.Abs(shaped[^1] - (r.Score - r.Beta * kl[^1])) <= 1e-5 * (1 + Math.Abs(r.Score));
    }

    [Property]
    public bool Every_estimator_is_zero_when_the_policy_is_the_reference(Response r)
    {
        return Estimators.All(est => KlShaping.PerTokenKl(r.Logp, r.Logp, est).All(k => k == 0))
            && Estimators.All(est => KlShaping.Shape(r.Logp, r.Logp, r.Score, r.Beta, est).SkipLast(1).All(x => x == 0));
    }

    [Property]
    public bool K3_and_k2_are_never_negative_and_k3_is_clamped(Response r)
    {
        var k3 = KlShaping.PerTokenKl(r.Logp, r.LogpRef, KlEstimator.K3);
        var k2 = KlShaping.PerTokenKl(r.Logp, r.LogpRef, KlEstimator.K2);
        return k3.All(k => k >= 0 && k <= KlShaping.K3Clamp) && k2.All(k => k >= 0);
    }

    [Property]
    public Property K1_and_k3_average_to_the_exact_kl_under_the_policy(NonNegativeInt seed)
    {
        // Unbiasedness, checked exactly: E_{x~π}[k] = KL(π‖ref) over a small vocabulary (no sampling needed).
        // Probabilities within a factor of 3 of each other keep k3 below its clamp, which would bias it.
        var rng = new Random(seed.Get);
        int v = 2 + rng.Next(6);
        double[] p = Normalize(Enumerable.Range(0, v).Select(_ => rng.NextDouble() + 0.5)), q = Normalize(Enumerable.Range(0, v).Select(_ => rng.NextDouble() + 0.5));
        double exact = p.Select((pi, i) => pi * Math.Log(pi / q[i])).Sum();
        double k1 = p.Select((pi, i) => pi * KlShaping.Kl(Math.Log(pi), Math.Log(q[i]), KlEstimator.K1)).Sum();
        double k3 = p.Select((pi, i) => pi * KlShaping.Kl(Math.Log(pi), Math.Log(q[i]), KlEstimator.K3)).Sum();
        return (Math.Abs(k1 - exact) < 1e-12 && Math.Abs(k3 - exact) < 1e-12).Label($"exact {exact} k1 {k1} k3 {k3}");
    }

    static double[] Normalize(IEnumerable<double> w)
    {
        var a = w.ToArray();
        double s = a.Sum();
        return a.Select(x => x / s).ToArray();
    }
}
