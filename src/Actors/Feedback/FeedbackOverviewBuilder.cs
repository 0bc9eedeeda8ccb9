using Rlft.Reward.Ratings;

namespace Rlft.Actors.Feedback;

/// <summary>
/// The admin view computed from the journal's fold: throughput per rater and per hour, each rater's agreement with
/// the others (Krippendorff's α over the pairs (this rater, another rater) of answers to the same unit), Cohen's κ for
/// each pair of raters, and the items flagged as broken. Pure: the same export gives the same overview.
/// </summary>
public static class FeedbackOverviewBuilder
{
    const long HourMs = 3_600_000;
    /// <summary>Hours listed in the throughput table (the most recent ones with ratings).</summary>
    public const int MaxHours = 72;

    public static FeedbackOverview Build(ExportData data, IReadOnlyList<(string Name, string TokenSha256, bool Revoked, string Source)> raters,
        IReadOnlyList<RatingUndone> undos, FeedbackStats stats, long now)
    {
        var items = data.Items.ToDictionary(i => i.Id, StringComparer.Ordinal);
        // unit key -> rater -> value, for pair items (categories) and score cells (1..7).
        var pairUnits = new Dictionary<string, Dictionary<string, double>>(StringComparer.Ordinal);
        var scoreUnits = new Dictionary<string, Dictionary<string, double>>(StringComparer.Ordinal);
        foreach (var r in data.Ratings)
        {
            var item = items[r.TaskId];
            if (item.Kind == FeedbackKind.Compare) Unit(pairUnits, item.Id)[r.Rater] = FeedbackState.PairCategory(item, r);
            else
                foreach (var cell in FeedbackState.ScoreCells(item))
                    if (FeedbackState.ScoreOf(r, cell) is { } v) Unit(scoreUnits, $"{item.Id}\u001f{cell.Completion}\u001f{cell.Criterion}")[r.Rater] = v;
        }
        var names = raters.Select(r => r.Name).Union(data.Ratings.Select(r => r.Rater)).Order(StringComparer.Ordinal).ToList();
        var byName = raters.ToDictionary(r => r.Name, StringComparer.Ordinal);
        var overview = names.Select(name =>
        {
            var mine = data.Ratings.Where(r => r.Rater == name).ToList();
            long? first = mine.Count > 0 ? mine.Min(r => r.AtMs) : null, last = mine.Count > 0 ? mine.Max(r => r.AtMs) : null;
            double? perHour = mine.Count > 0 ? mine.Count / Math.Max(1.0, (last!.Value - first!.Value) / (double)HourMs) : null;
            int shared = mine.Select(r => r.TaskId).Distinct().Count(id => data.Ratings.Any(o => o.TaskId == id && o.Rater != name));
            var known = byName.TryGetValue(name, out var k) ? k : (name, "", false, "removed");
            return new RaterOverview(name, known.Item4, known.Item3, mine.Count,
                data.SetAside.Count(s => s.Rater == name && !s.Broken), data.SetAside.Count(s => s.Rater == name && s.Broken),
                undos.Count(u => u.Rater == name), first, last, perHour,
                RaterAlpha(pairUnits, name, Agreement.Nominal), RaterAlpha(scoreUnits, name, Agreement.Interval), shared);
        }).ToList();

        var hours = data.Ratings.GroupBy(r => r.AtMs / HourMs * HourMs).OrderByDescending(g => g.Key).Take(MaxHours).OrderBy(g => g.Key)
            .Select(g => new HourCount(g.Key, g.GroupBy(r => r.Rater).OrderBy(x => x.Key, StringComparer.Ordinal)
                .ToDictionary(x => x.Key, x => x.Count(), StringComparer.Ordinal)))
            .ToList();

        var pairs = new List<PairAgreement>();
        var active = data.Ratings.Select(r => r.Rater).Distinct().Order(StringComparer.Ordinal).ToList();
        for (int i = 0; i < active.Count; i++)
            for (int j = i + 1; j < active.Count; j++)
            {
                string a = active[i], b = active[j];
                int sharedItems = data.Ratings.Where(r => r.Rater == a).Select(r => r.TaskId)
                    .Intersect(data.Ratings.Where(r => r.Rater == b).Select(r => r.TaskId)).Count();
                if (sharedItems == 0) continue;
                pairs.Add(new PairAgreement(a, b, sharedItems, Kappa(pairUnits, a, b), Kappa(scoreUnits, a, b)));
            }

        var flagged = data.SetAside.Where(s => s.Broken).GroupBy(s => s.ItemId)
            .Select(g => new FlaggedItem(g.Key, Excerpt(items[g.Key]), data.Resolved.TryGetValue(g.Key, out var o) ? o : null, g.ToList()))
            .ToList();
        int discarded = data.Resolved.Values.Count(o => o == ResolutionOutcome.Discarded);
        return new FeedbackOverview(now, stats.Pending, stats.Rated, stats.TimedOut - discarded, discarded, stats.Ratings,
            stats.CompareAgreement, stats.ScoreAgreement, overview, hours, pairs, flagged);
    }

    static Dictionary<string, double> Unit(Dictionary<string, Dictionary<string, double>> units, string key) =>
        units.TryGetValue(key, out var u) ? u : units[key] = new Dictionary<string, double>(StringComparer.Ordinal);

    /// <summary>α over two-value units (this rater's answer, another rater's answer) for every unit both answered.</summary>
    public static double? RaterAlpha(Dictionary<string, Dictionary<string, double>> units, string rater, Func<double, double, double> delta) =>
        Rlft.Actors.Feedback.Agreement.KrippendorffAlpha(
            units.Values.Where(u => u.ContainsKey(rater))
                .SelectMany(u => u.Where(kv => kv.Key != rater).Select(kv => (IReadOnlyList<double>)[u[rater], kv.Value])),
            delta);

    static double? Kappa(Dictionary<string, Dictionary<string, double>> units, string a, string b)
    {
        var shared = units.Where(u => u.Value.ContainsKey(a) && u.Value.ContainsKey(b)).ToList();
        if (shared.Count == 0) return null;
        var ratings = shared.SelectMany(u => new[] { new ScoreRating(u.Key, a, u.Value[a]), new ScoreRating(u.Key, b, u.Value[b]) });
        return Rlft.Reward.Ratings.Agreement.CohenKappa(ratings, a, b);
    }

    static string Excerpt(FeedbackItem item)
    {
        string text = item.Messages is { Count: > 0 } m ? m[^1].Content : item.Prompt;
        return text.Length <= 200 ? text : text[..200] + "…";
    }
}
