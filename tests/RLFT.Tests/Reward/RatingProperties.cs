using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Reward.Ratings;

namespace Rlft.Tests.Reward;

/// <summary>Human-rating aggregation: one vote per rater, order does not matter, agreement and Bradley–Terry behave.</summary>
[Properties(Arbitrary = [typeof(RewardArbitraries)], MaxTest = 200)]
public class RatingProperties
{
    internal static T[] Shuffled<T>(T[] items, int seed)
    {
        var rng = new Random(seed);
        return items.Select(x => (x, k: rng.Next())).OrderBy(p => p.k).Select(p => p.x).ToArray();
    }

    static bool SameScores(IReadOnlyDictionary<string, ItemScore> a, IReadOnlyDictionary<string, ItemScore> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var o) && o == kv.Value);

    [Property]
    public bool Aggregation_does_not_depend_on_the_order_ratings_arrive_in(RatingSet s, int seed)
    {
        var shuffled = Shuffled(s.Ratings, seed);
        return Enum.GetValues<ScoreAggregate>().All(agg => SameScores(RatingAggregation.Scores(s.Ratings, agg), RatingAggregation.Scores(shuffled, agg)))
            && Nullable.Equals(Agreement.KrippendorffAlpha(s.Ratings), Agreement.KrippendorffAlpha(shuffled));
    }

    [Property]
    public bool A_repeated_rating_by_the_same_rater_counts_once(RatingSet s, NonNegativeInt pick, int seed)
    {
        if (s.Ratings.Length == 0) return true;
        var repeated = Shuffled([.. s.Ratings, s.Ratings[pick.Get % s.Ratings.Length]], seed);
        return Enum.GetValues<ScoreAggregate>().All(agg => SameScores(RatingAggregation.Scores(s.Ratings, agg), RatingAggregation.Scores(repeated, agg)))
            && Nullable.Equals(Agreement.KrippendorffAlpha(s.Ratings, AlphaMetric.Ordinal), Agreement.KrippendorffAlpha(repeated, AlphaMetric.Ordinal));
    }

    [Property]
    public bool Aggregates_lie_between_the_lowest_and_highest_rating(RatingSet s) =>
        Enum.GetValues<ScoreAggregate>().All(agg => RatingAggregation.Scores(s.Ratings, agg).All(kv =>
        {
            var mine = s.Ratings.Where(r => r.ItemId == kv.Key).Select(r => r.Score).ToArray();
            return kv.Value.Score >= mine.Min() && kv.Value.Score <= mine.Max() && kv.Value.Raters == mine.Length;
        }));

    [Property]
    public Property Agreement_is_one_for_identical_raters(RatingSet s, PositiveInt copies)
    {
        // Every rater copies rater r0's scores on the items r0 rated.
        var first = s.Ratings.Where(r => r.RaterId == "r0").ToArray();
        var identical = first.Concat(Enumerable.Range(1, 1 + copies.Get % 3).SelectMany(k => first.Select(r => r with { RaterId = $"copy{k}" }))).ToArray();
        double? interval = Agreement.KrippendorffAlpha(identical), ordinal = Agreement.KrippendorffAlpha(identical, AlphaMetric.Ordinal);
        double? kappa = Agreement.CohenKappa(identical, "r0", "copy1");
        return (interval == 1 && ordinal == 1 && kappa == 1).When(first.Length > 0)
            .Label($"alpha interval {interval}, ordinal {ordinal}, kappa {kappa}");
    }

    [Property]
    public Property An_item_that_wins_every_comparison_with_another_scores_higher(Comparisons others, PositiveInt wins, int raterSeed)
    {
        // A and B meet only each other (A always wins); the other items play among themselves.
        var ab = Enumerable.Range(0, 1 + wins.Get % 5)
            .Select(k => new PairwiseChoice($"r{(raterSeed + k) % 3}", k % 2 == 0 ? "A" : "B", k % 2 == 0 ? "B" : "A", "A"));
        var scores = BradleyTerry.Fit(others.Choices.Concat(ab));
        return (scores["A"] > scores["B"]).Label($"A {scores["A"]} B {scores["B"]}");
    }

    [Property]
    public bool Bradley_Terry_scores_do_not_depend_on_comparison_order(Comparisons c, int seed)
    {
        var a = BradleyTerry.Fit(c.Choices);
        var b = BradleyTerry.Fit(Shuffled(c.Choices, seed));
        return a.Count == b.Count && a.All(kv => Math.Abs(kv.Value - b[kv.Key]) < 1e-9);
    }

    [Property]
    public bool Bradley_Terry_orders_a_lone_pair_as_the_majority_does(Comparisons c)
    {
        // Keep only the comparisons between i0 and i1: then strengths follow the vote count.
        var pair = c.Choices.Where(x => (x.A, x.B) is ("i0", "i1") or ("i1", "i0")).ToArray();
        if (pair.Length == 0) return true;
        var outcome = RatingAggregation.Majority(pair).Single();
        var bt = BradleyTerry.Fit(pair);
        return outcome.Winner switch
        {
            "i0" => bt["i0"] > bt["i1"],
            "i1" => bt["i1"] > bt["i0"],
            _ => Math.Abs(bt["i0"] - bt["i1"]) < 1e-9,
        };
    }
}
