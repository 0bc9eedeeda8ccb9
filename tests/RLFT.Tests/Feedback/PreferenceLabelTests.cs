using Rlft.Reward.Ratings;

namespace Rlft.Tests.Feedback;

/// <summary>Ties and strengths as preference targets, checked against hand-computed examples.</summary>
public class PreferenceLabelTests
{
    static readonly PreferenceWeighting Keep = new() { Ties = TieHandling.Half, BothBad = TieHandling.Half };

    [Theory]
    [InlineData(nameof(PairAnswer.A), nameof(PreferenceStrength.Unstated), true, 1.0)]
    [InlineData(nameof(PairAnswer.A), nameof(PreferenceStrength.Much), true, 1.0)]
    [InlineData(nameof(PairAnswer.A), nameof(PreferenceStrength.Slightly), true, 0.75)]
    [InlineData(nameof(PairAnswer.B), nameof(PreferenceStrength.Slightly), false, 0.75)]
    [InlineData(nameof(PairAnswer.B), nameof(PreferenceStrength.Much), false, 1.0)]
    public void A_choice_is_a_pair_with_its_strength_as_the_target(string answer, string strength, bool firstChosen, double target) =>
        Assert.Equal(new PreferenceLabel(firstChosen, target, 1),
            PreferenceLabels.Label(Enum.Parse<PairAnswer>(answer), Enum.Parse<PreferenceStrength>(strength), PreferenceWeighting.Default));

    [Fact]
    public void Ties_and_both_bad_are_dropped_by_default_and_half_targets_when_asked()
    {
        Assert.Null(PreferenceLabels.Label(PairAnswer.Tie, PreferenceStrength.Unstated, PreferenceWeighting.Default));
        Assert.Null(PreferenceLabels.Label(PairAnswer.BothBad, PreferenceStrength.Unstated, PreferenceWeighting.Default));
        Assert.Equal(new PreferenceLabel(true, 0.5, 1), PreferenceLabels.Label(PairAnswer.Tie, PreferenceStrength.Unstated, Keep));
        Assert.Null(PreferenceLabels.Label(PairAnswer.BothBad, PreferenceStrength.Unstated, new PreferenceWeighting { Ties = TieHandling.Half }));
    }

    [Fact]
    public void Several_raters_average_their_probabilities_and_weigh_by_how_many_answers_were_kept()
    {
        // A, A slightly, tie: P(A ≻ B) = (1 + 0.75 + 0.5) / 3 = 0.75, three answers.
        Assert.Equal(new PreferenceLabel(true, 0.75, 3), PreferenceLabels.Combine(
            [(PairAnswer.A, PreferenceStrength.Unstated), (PairAnswer.A, PreferenceStrength.Slightly), (PairAnswer.Tie, PreferenceStrength.Unstated)], Keep));
        // Ties dropped: (1 + 0.75) / 2 = 0.875, two answers.
        Assert.Equal(new PreferenceLabel(true, 0.875, 2), PreferenceLabels.Combine(
            [(PairAnswer.A, PreferenceStrength.Unstated), (PairAnswer.A, PreferenceStrength.Slightly), (PairAnswer.Tie, PreferenceStrength.Unstated)], PreferenceWeighting.Default));
        // B much, B slightly, A slightly: P(A ≻ B) = (0 + 0.25 + 0.75) / 3 = 1/3, so B is chosen with 2/3.
        var b = PreferenceLabels.Combine([(PairAnswer.B, PreferenceStrength.Much), (PairAnswer.B, PreferenceStrength.Slightly), (PairAnswer.A, PreferenceStrength.Slightly)], Keep)!;
        Assert.Equal((false, 3.0), (b.FirstIsChosen, b.Weight));
        Assert.Equal(2.0 / 3, b.Target, 12);
        Assert.Null(PreferenceLabels.Combine([(PairAnswer.Tie, PreferenceStrength.Unstated)], PreferenceWeighting.Default));
    }

    [Fact]
    public void A_combined_label_gives_the_same_soft_loss_as_its_answers_one_by_one()
    {
        // Soft Bradley–Terry loss at margin x: −p log σ(x) − (1−p) log σ(−x); linear in p, so Σ over answers = n × loss(mean p).
        static double Loss(double p, double x) => -p * Math.Log(1 / (1 + Math.Exp(-x))) - (1 - p) * Math.Log(1 / (1 + Math.Exp(x)));
        (PairAnswer, PreferenceStrength)[] answers = [(PairAnswer.A, PreferenceStrength.Much), (PairAnswer.B, PreferenceStrength.Slightly), (PairAnswer.Tie, PreferenceStrength.Unstated)];
        foreach (double x in new[] { -1.3, 0.0, 0.4, 2.5 })
        {
            double separate = answers.Sum(a => PreferenceLabels.Label(a.Item1, a.Item2, Keep) is { } l ? l.Weight * Loss(l.Target, l.FirstIsChosen ? x : -x) : 0);
            var c = PreferenceLabels.Combine(answers, Keep)!;
            Assert.Equal(separate, c.Weight * Loss(c.Target, c.FirstIsChosen ? x : -x), 12);
        }
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(1.2)]
    [InlineData(double.NaN)]
    public void Targets_outside_half_to_one_are_refused(double slightly) =>
        Assert.StartsWith("slightly:", new PreferenceWeighting { Slightly = slightly }.Problem());
}
