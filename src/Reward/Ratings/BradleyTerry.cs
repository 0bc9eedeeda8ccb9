namespace Rlft.Reward.Ratings;

/// <summary>
/// Bradley–Terry strengths from pairwise choices: P(i beats j) = p_i / (p_i + p_j), fitted with
/// Hunter's (2004) MM iterations. A prior of <c>prior</c> virtual wins and losses against an anchor
/// of strength 1 keeps every strength finite (an item that always wins still converges) and fixes the scale.
/// </summary>
internal static class BradleyTerry
{
    /// <summary>Item → log-strength (anchor = 0). Votes are one per rater per pair, as in <see cref="RatingAggregation.PairVotes"/>.</summary>
    public static IReadOnlyDictionary<string, double> Fit(IEnumerable<PairwiseChoice> choices, double prior = 0.1, int maxIterations = 10_000, double tolerance = 1e-12)
    {
        if (!(prior > 0)) throw new ArgumentOutOfRangeException(nameof(prior), prior, "the prior must be positive");
        var votes = RatingAggregation.PairVotes(choices);
        var items = votes.Keys.SelectMany(k => new[] { k.First, k.Second }).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = items.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i, StringComparer.Ordinal);
        int n = items.Length;
        var wins = new double[n];
        var games = new List<(int I, int J, double N)>();
        foreach (var ((a, b), (va, vb)) in votes)
        {
            int i = index[a], j = index[b];
            wins[i] += va;
            wins[j] += vb;
            games.Add((i, j, va + vb));
        }
        var p = Enumerable.Repeat(1.0, n).ToArray();
        var denominator = new double[n];
        for (int iter = 0; iter < maxIterations; iter++)
        {
            for (int i = 0; i < n; i++) denominator[i] = 2 * prior / (p[i] + 1);
            foreach (var (i, j, games_ij) in games)
            {
                double d = games_ij / (p[i] + p[j]);
                denominator[i] += d;
                denominator[j] += d;
            }
            double change = 0;
            for (int i = 0; i < n; i++)
            {
                double next = (wins[i] + prior) / denominator[i];
                change = Math.Max(change, Math.Abs(Math.Log(next / p[i])));
                p[i] = next;
            }
            if (change < tolerance) break;
        }
        return items.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => Math.Log(p[x.i]), StringComparer.Ordinal);
    }
}
