namespace Rlft.Actors.Feedback;

/// <summary>
/// Krippendorff's alpha, α = 1 − D_o / D_e, computed from the coincidence matrix (Krippendorff 2011,
/// "Computing Krippendorff's Alpha-Reliability"). Each unit is the list of values its raters gave; units with
/// fewer than two values are not pairable and are ignored. Missing data and any number of raters are fine.
/// </summary>
internal static class Agreement
{
    /// <summary>δ² for nominal data: 0 when equal, 1 otherwise (pairwise choices).</summary>
    public static double Nominal(double a, double b) => a == b ? 0 : 1;

    /// <summary>δ² for interval data: the squared difference (1..7 scores).</summary>
    public static double Interval(double a, double b) => (a - b) * (a - b);

    /// <summary>
    /// 1 when every pairable value agrees (D_o = 0); null when nothing is pairable or the values cannot disagree
    /// (D_e = 0 ≠ D_o). The same conventions as the reward pipeline's rating aggregation.
    /// </summary>
    public static double? KrippendorffAlpha(IEnumerable<IReadOnlyList<double>> units, Func<double, double, double> delta2)
    {
        // o[(c,k)]: coincidences of value c with value k within units, each unit weighted 1/(m_u − 1).
        var o = new Dictionary<(double, double), double>();
        foreach (var unit in units)
        {
            int m = unit.Count;
            if (m < 2) continue;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++)
                    if (i != j)
                        o[(unit[i], unit[j])] = o.GetValueOrDefault((unit[i], unit[j])) + 1.0 / (m - 1);
        }
        if (o.Count == 0) return null;
        var nc = new Dictionary<double, double>();
        foreach (var ((c, _), w) in o) nc[c] = nc.GetValueOrDefault(c) + w;
        double n = nc.Values.Sum();
        double observed = o.Sum(kv => kv.Value * delta2(kv.Key.Item1, kv.Key.Item2)) / n;
        double expected = 0;
        foreach (var (c, a) in nc)
            foreach (var (k, b) in nc)
                expected += a * b * delta2(c, k);
        expected /= n * (n - 1);
        if (observed == 0) return 1;
        return expected == 0 ? null : 1 - observed / expected;
    }
}
