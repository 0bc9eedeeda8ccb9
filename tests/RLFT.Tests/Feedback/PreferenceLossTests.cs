using Rlft.Policy.Training;
using Rlft.Reward.Ratings;
using static TorchSharp.torch;

namespace Rlft.Tests.Feedback;

/// <summary>DPO and Bradley–Terry losses with per-pair preference targets and weights, against hand computations.</summary>
public class PreferenceLossTests
{
    static Tensor T(params float[] v) => tensor(v);
    static double LogSig(double x) => -Math.Log(1 + Math.Exp(-x));

    [Fact]
    public void Dpo_sigmoid_with_a_tie_target_and_weights_matches_the_formula()
    {
        using var _ = NewDisposeScope();
        // h1 = (−4 − (−5)) − (−6 − (−6)) = 1; h2 = (−10 − (−10)) − (−9 − (−10)) = −1; β = 0.1.
        var r = Losses.DpoLoss(T(-4, -10), T(-6, -9), T(-5, -10), T(-6, -10), 0.1, DpoLossType.Sigmoid, target: T(1, 0.5f), weight: T(1, 3));
        double l1 = -LogSig(0.1), l2 = -0.5 * LogSig(-0.1) - 0.5 * LogSig(0.1);
        Assert.Equal((l1 + 3 * l2) / 4, r.Loss.item<float>(), 6);
        // With label smoothing ε = 0.1 a ¾ target becomes t' = ¾·0.8 + 0.1 = 0.7.
        var smooth = Losses.DpoLoss(T(-4), T(-6), T(-5), T(-6), 0.1, DpoLossType.Sigmoid, labelSmoothing: 0.1, target: T(0.75f));
        Assert.Equal(-0.7 * LogSig(0.1) - 0.3 * LogSig(-0.1), smooth.Loss.item<float>(), 6);
    }

    [Fact]
    public void Ipo_regresses_the_margin_onto_the_target()
    {
        using var _ = NewDisposeScope();
        // h = 1, β = 0.1: t = ¾ → (1 − 0.25/0.1)² = 2.25; t = ½ → 1² = 1; mean 1.625.
        var r = Losses.DpoLoss(T(-4, -4), T(-6, -6), T(-5, -5), T(-6, -6), 0.1, DpoLossType.Ipo, target: T(0.75f, 0.5f));
        Assert.Equal(1.625, r.Loss.item<float>(), 5);
        // t = 1 is the usual IPO target 1/(2β).
        var hard = Losses.DpoLoss(T(-4), T(-6), T(-5), T(-6), 0.1, DpoLossType.Ipo, target: T(1f));
        Assert.Equal(Math.Pow(1 - 5, 2), hard.Loss.item<float>(), 4);
    }

    [Fact]
    public void Targets_of_one_and_weights_of_one_give_exactly_the_unlabelled_losses()
    {
        using var _ = NewDisposeScope();
        var c = T(-4, -10, -3); var rj = T(-6, -9, -3.5f); var rc = T(-5, -10, -3.2f); var rr = T(-6, -10, -3);
        foreach (var type in new[] { DpoLossType.Sigmoid, DpoLossType.Ipo })
            Assert.Equal(Losses.DpoLoss(c, rj, rc, rr, 0.2, type, 0.05).Loss.item<float>(),
                Losses.DpoLoss(c, rj, rc, rr, 0.2, type, 0.05, target: ones(3), weight: ones(3)).Loss.item<float>(), 6);
        Assert.Equal(Losses.RewardModelLoss(T(2, 0), T(1, 1), T(0.5f, 0)).Loss.item<float>(),
            Losses.RewardModelLoss(T(2, 0), T(1, 1), T(0.5f, 0), target: ones(2), weight: ones(2)).Loss.item<float>(), 6);
    }

    [Fact]
    public void Bradley_terry_with_soft_targets_matches_the_formula_and_a_tie_pulls_the_margin_to_zero()
    {
        using var _ = NewDisposeScope();
        // d = [1, −1]: −¾ log σ(1) − ¼ log σ(−1) and −½ log σ(−1) − ½ log σ(1), averaged.
        var r = Losses.RewardModelLoss(T(2, 0), T(1, 1), target: T(0.75f, 0.5f));
        double expected = ((-0.75 * LogSig(1) - 0.25 * LogSig(-1)) + (-0.5 * LogSig(-1) - 0.5 * LogSig(1))) / 2;
        Assert.Equal(expected, r.Loss.item<float>(), 6);
        // At equal rewards a tie has zero gradient; a ¾ target pushes the chosen reward up by (¾ − ½) = ¼.
        var chosen = T(0.3f, 0.3f).requires_grad_();
        var rejected = T(0.3f, 0.3f);
        Losses.RewardModelLoss(chosen, rejected, target: T(0.5f, 0.75f)).Loss.backward();
        var grad = chosen.grad!.data<float>().ToArray();
        Assert.Equal(0f, grad[0], 6);
        Assert.Equal(-0.25f / 2, grad[1], 6);   // ∂/∂r_c of the mean: (σ(0) − t)/B
    }

    [Fact]
    public void Answers_trained_one_by_one_give_the_loss_of_their_combined_label()
    {
        using var _ = NewDisposeScope();
        var w = new PreferenceWeighting { Ties = TieHandling.Half };
        (PairAnswer, PreferenceStrength)[] answers = [(PairAnswer.A, PreferenceStrength.Much), (PairAnswer.B, PreferenceStrength.Slightly), (PairAnswer.Tie, PreferenceStrength.Unstated)];
        float a = 0.3f, b = -0.2f;   // the reward model's scores of A and B
        var labels = answers.Select(x => PreferenceLabels.Label(x.Item1, x.Item2, w)!).ToList();
        var separate = Losses.RewardModelLoss(
            T([.. labels.Select(l => l.FirstIsChosen ? a : b)]), T([.. labels.Select(l => l.FirstIsChosen ? b : a)]),
            target: T([.. labels.Select(l => (float)l.Target)]), weight: T([.. labels.Select(l => (float)l.Weight)]));
        var c = PreferenceLabels.Combine(answers, w)!;
        Assert.Equal((true, 3.0), (c.FirstIsChosen, c.Weight));
        var combined = Losses.RewardModelLoss(T(a), T(b), target: T((float)c.Target), weight: T((float)c.Weight));
        Assert.Equal(separate.Loss.item<float>(), combined.Loss.item<float>(), 6);
    }
}
