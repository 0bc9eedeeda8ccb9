namespace Rlft.Reward.Ratings;

/// <summary>One rater's score for one item (the rater page's 1..7 scale).</summary>
public sealed record ScoreRating(string ItemId, string RaterId, double Score);

/// <summary>One rater's choice between two items; <paramref name="Winner"/> is <paramref name="A"/> or <paramref name="B"/>.</summary>
internal sealed record PairwiseChoice(string RaterId, string A, string B, string Winner);

public enum ScoreAggregate { Mean, Median }

/// <summary>An item's aggregated score and how many distinct raters it rests on.</summary>
internal sealed record ItemScore(double Score, int Raters);

/// <summary>How a pair was judged: votes for each side (one per rater) and the majority, or null on a tie.</summary>
internal sealed record PairOutcome(string First, string Second, double FirstVotes, double SecondVotes)
{
    public string? Winner => FirstVotes > SecondVotes ? First : SecondVotes > FirstVotes ? Second : null;
}

/// <summary>
/// Turning many raters' votes into one figure per item or pair. One vote per rater: a rater's repeated
/// ratings of an item collapse to their mean (repeated choices on a pair to fractions of one vote), so
/// resubmissions count once and the result does not depend on the order votes arrived in.
/// </summary>
internal static class RatingAggregation
{
    /// <summary>Per item: the mean or median over raters of each rater's (collapsed) score.</summary>
    public static IReadOnlyDictionary<string, ItemScore> Scores(IEnumerable<ScoreRating> ratings, ScoreAggregate aggregate = ScoreAggregate.Mean) =>
        PerRater(ratings).ToDictionary(
            item => item.Key,
            item => new ItemScore(aggregate == ScoreAggregate.Mean ? item.Value.Values.Average() : Median(item.Value.Values), item.Value.Count),
            StringComparer.Ordinal);

    /// <summary>item → rater → that rater's score (mean of their repeats), in ordinal key order.</summary>
    public static SortedDictionary<string, SortedDictionary<string, double>> PerRater(IEnumerable<ScoreRating> ratings)
    {
        var result = new SortedDictionary<string, SortedDictionary<string, double>>(StringComparer.Ordinal);
        foreach (var g in ratings.GroupBy(r => (r.ItemId, r.RaterId)))
        {
            if (!result.TryGetValue(g.Key.ItemId, out var byRater))
                result[g.Key.ItemId] = byRater = new SortedDictionary<string, double>(StringComparer.Ordinal);
            // Sorting before summing makes the mean bit-identical whatever the arrival order.
            byRater[g.Key.RaterId] = g.Select(r => r.Score).Order().Average();
        }
        return result;
    }

    public static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        if (v.Length == 0) throw new ArgumentException("median of no values", nameof(values));
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>Per unordered pair (ordinal order of ids): one vote per rater, the majority winner or a tie.</summary>
    public static IReadOnlyList<PairOutcome> Majority(IEnumerable<PairwiseChoice> choices) =>
        PairVotes(choices).Select(kv => new PairOutcome(kv.Key.First, kv.Key.Second, kv.Value.First, kv.Value.Second)).ToList();

    /// <summary>(first, second) with first &lt; second → (votes for first, votes for second), each rater worth one vote.</summary>
    public static SortedDictionary<(string First, string Second), (double First, double Second)> PairVotes(IEnumerable<PairwiseChoice> choices)
    {
        var votes = new SortedDictionary<(string, string), (double, double)>(PairComparer.Instance);
        var perRater = choices.Select(Validate).GroupBy(c => (Pair(c), c.RaterId));
        foreach (var g in perRater)
        {
            var (first, second) = g.Key.Item1;
            double n = g.Count(), forFirst = g.Count(c => c.Winner == first) / n;
            var (f, s) = votes.GetValueOrDefault((first, second));
            votes[(first, second)] = (f + forFirst, s + (1 - forFirst));
        }
        return votes;
    }

    static (string, string) Pair(PairwiseChoice c) => string.CompareOrdinal(c.A, c.B) < 0 ? (c.A, c.B) : (c.B, c.A);

    static PairwiseChoice Validate(PairwiseChoice c)
    {
        if (c.A == c.B) throw new ArgumentException($"choice by {c.RaterId} compares '{c.A}' with itself");
        if (c.Winner != c.A && c.Winner != c.B) throw new ArgumentException($"choice by {c.RaterId}: winner '{c.Winner}' is neither '{c.A}' nor '{c.B}'");
        return c;
    }

    sealed class PairComparer : IComparer<(string, string)>
    {
        public static readonly PairComparer Instance = new();
        public int Compare((string, string) x, (string, string) y)
        {
            int c = string.CompareOrdinal(x.Item1, y.Item1);
            return c != 0 ? c : string.CompareOrdinal(x.Item2, y.Item2);
        }
    }
}
