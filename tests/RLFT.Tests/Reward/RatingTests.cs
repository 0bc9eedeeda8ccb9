using Rlft.Reward.Ratings;

namespace Rlft.Tests.Reward;

public class RatingTests
{
    // Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers, 12 units,
    // values 1..5 with missing data. Published: α_interval = 0.849, α_ordinal = 0.815.
    static readonly string[] Table =
    [
        "1 2 3 3 2 1 4 1 2 . . .",
        "1 2 3 3 2 2 4 1 2 5 . 3",
        ". 3 3 3 2 3 4 2 2 5 1 .",
        "1 2 3 3 2 4 4 1 2 5 1 .",
    ];

    static IEnumerable<ScoreRating> Reliability() =>
        Table.SelectMany((row, observer) => row.Split(' ').Select((v, unit) => (v, unit))
            .Where(x => x.v != ".").Select(x => new ScoreRating($"u{x.unit}", $"o{observer}", double.Parse(x.v, System.Globalization.CultureInfo.InvariantCulture))));

    [Fact]
    public void Krippendorffs_alpha_matches_the_published_example()
    {
        Assert.Equal(0.849, Agreement.KrippendorffAlpha(Reliability(), AlphaMetric.Interval)!.Value, 3);
        Assert.Equal(0.815, Agreement.KrippendorffAlpha(Reliability(), AlphaMetric.Ordinal)!.Value, 3);
    }

    [Fact]
    public void Cohens_kappa_matches_a_hand_computation()
    {
        // A: 1 1 2 2, B: 1 2 2 2 → p_o = 3/4, p_e = ½·¼ + ½·¾ = ½, κ = (¾ − ½)/(1 − ½) = ½.
        ScoreRating[] ratings = [new("x", "A", 1), new("y", "A", 1), new("z", "A", 2), new("w", "A", 2),
                                 new("x", "B", 1), new("y", "B", 2), new("z", "B", 2), new("w", "B", 2)];
        Assert.Equal(0.5, Agreement.CohenKappa(ratings, "A", "B")!.Value, 12);
        Assert.Null(Agreement.CohenKappa(ratings, "A", "C"));
        Assert.Null(Agreement.KrippendorffAlpha([new("x", "A", 1)]));
    }

    [Fact]
    public void Bradley_Terry_recovers_the_win_ratio_and_stays_finite_for_an_unbeaten_item()
    {
        var choices = Enumerable.Range(0, 4).Select(i => new PairwiseChoice($"r{i}", "a", "b", i < 3 ? "a" : "b"));
        var weak = BradleyTerry.Fit(choices, prior: 1e-6);
        Assert.Equal(Math.Log(3), weak["a"] - weak["b"], 3);
        var unbeaten = BradleyTerry.Fit([new("r1", "a", "b", "a"), new("r2", "a", "b", "a"), new("r1", "b", "c", "b")]);
        Assert.All(unbeaten.Values, v => Assert.True(double.IsFinite(v)));
        Assert.True(unbeaten["a"] > unbeaten["b"] && unbeaten["b"] > unbeaten["c"]);
    }

    [Fact]
    public void Majority_counts_one_vote_per_rater_and_reports_ties()
    {
        var outcome = RatingAggregation.Majority(
        [
            new("r1", "a", "b", "a"), new("r1", "b", "a", "a"), new("r1", "a", "b", "a"), // r1 three times: one vote
            new("r2", "a", "b", "b"),
        ]).Single();
        Assert.Equal(("a", "b", 1.0, 1.0), (outcome.First, outcome.Second, outcome.FirstVotes, outcome.SecondVotes));
        Assert.Null(outcome.Winner);
        Assert.Throws<ArgumentException>(() => RatingAggregation.Majority([new("r1", "a", "b", "c")]));
    }

    [Fact]
    public void Mean_and_median_per_item_use_one_vote_per_rater()
    {
        ScoreRating[] ratings = [new("x", "a", 1), new("x", "b", 2), new("x", "c", 7), new("x", "c", 7), new("y", "a", 4)];
        var mean = RatingAggregation.Scores(ratings);
        var median = RatingAggregation.Scores(ratings, ScoreAggregate.Median);
        Assert.Equal(new ItemScore(10 / 3.0, 3), mean["x"]);
        Assert.Equal(new ItemScore(2, 3), median["x"]);
        Assert.Equal(new ItemScore(4, 1), median["y"]);
    }
}
