namespace Rlft.Reward.Ratings;

internal enum AlphaMetric { Interval, Ordinal }

/// <summary>
/// Inter-rater agreement. Krippendorff's α (Krippendorff 2011, "Computing Krippendorff's alpha-reliability")
/// handles any number of raters and missing ratings; Cohen's κ compares two raters on the items both rated.
/// Both use one vote per rater per item (<see cref="RatingAggregation.PerRater"/>).
/// </summary>
internal static class Agreement
{
    /// <summary>
    /// α = 1 − D_o / D_e over items with at least two raters; 1 when every pairable value agrees
    /// (D_o = 0), null when there are fewer than two pairable values or they cannot disagree (D_e = 0 ≠ D_o).
    /// </summary>
    public static double? KrippendorffAlpha(IEnumerable<ScoreRating> ratings, AlphaMetric metric = AlphaMetric.Interval)
    {
        var units = RatingAggregation.PerRater(ratings).Values.Where(u => u.Count >= 2).Select(u => u.Values.ToArray()).ToList();
        var all = units.SelectMany(u => u).ToArray();
        int n = all.Length;
        if (n < 2) return null;
        var delta = Distance(all, metric);
        double observed = 0;
        foreach (var u in units)
        {
            double s = 0;
            for (int i = 0; i < u.Length; i++)
                for (int j = 0; j < u.Length; j++)
                    if (i != j) s += delta(u[i], u[j]);
            observed += s / (u.Length - 1);
        }
        observed /= n;
        double expected = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (i != j) expected += delta(all[i], all[j]);
        expected /= (double)n * (n - 1);
        if (observed == 0) return 1;
        return expected == 0 ? null : 1 - observed / expected;
    }

    static Func<double, double, double> Distance(double[] values, AlphaMetric metric)
    {
        if (metric == AlphaMetric.Interval) return (a, b) => (a - b) * (a - b);
        // Ordinal: the squared count of values between a and b, halving the end categories.
        var counts = values.GroupBy(v => v).ToDictionary(g => g.Key, g => (double)g.Count());
        var sorted = counts.Keys.Order().ToArray();
        var cumulative = new Dictionary<double, double>();
        double run = 0;
        foreach (var v in sorted) { run += counts[v]; cumulative[v] = run; }
        return (a, b) =>
        {
            if (a == b) return 0;
            double lo = Math.Min(a, b), hi = Math.Max(a, b);
            double between = cumulative[hi] - cumulative[lo] + counts[lo] - (counts[lo] + counts[hi]) / 2;
            return between * between;
        };
    }

    /// <summary>Cohen's κ for two raters over the items both rated (scores compared as categories); null if they share none.</summary>
    public static double? CohenKappa(IEnumerable<ScoreRating> ratings, string raterA, string raterB)
    {
        var pairs = RatingAggregation.PerRater(ratings).Values
            .Where(u => u.ContainsKey(raterA) && u.ContainsKey(raterB))
            .Select(u => (A: u[raterA], B: u[raterB])).ToList();
        if (pairs.Count == 0) return null;
        double n = pairs.Count;
        double po = pairs.Count(p => p.A == p.B) / n;
        var categories = pairs.SelectMany(p => new[] { p.A, p.B }).Distinct();
        double pe = categories.Sum(c => pairs.Count(p => p.A == c) / n * (pairs.Count(p => p.B == c) / n));
        if (po == 1) return 1;
        return pe == 1 ? null : (po - pe) / (1 - pe);
    }
}
