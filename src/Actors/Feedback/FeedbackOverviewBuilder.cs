using Rlft.Reward.Ratings;

namespace Rlft.Actors.Feedback;

/// <summary>
/// What the overview is computed from: copies taken on the actor's thread (the records in them are immutable), so the
/// computation itself can run anywhere. Counts: items short of ratings, fully rated (closed or in their undo window),
/// timed out and discarded.
/// </summary>
internal sealed record OverviewInputs(
    ExportData Data,
    IReadOnlyList<(string Name, string TokenSha256, bool Revoked, string Source)> Raters,
    IReadOnlyList<RatingUndone> Undos,
    int Pending,
    int Rated,
    int TimedOut,
    int Discarded,
    long AtMs);

/// <summary>
/// The admin view computed from the journal's fold: throughput per rater and per hour, agreement overall and of each
/// rater with the others (Krippendorff's α over the pairs (this rater, another rater) of answers to the same unit),
/// Cohen's κ for each pair of raters, and the items flagged as broken. Pure: the same inputs give the same overview.
/// </summary>
internal static class FeedbackOverviewBuilder
{
    const long HourMs = 3_600_000;
    /// <summary>Hours listed in the throughput table (the most recent ones with ratings).</summary>
    public const int MaxHours = 72;

    public static FeedbackOverview Build(OverviewInputs inputs)
    {
        var (data, raters, undos) = (inputs.Data, inputs.Raters, inputs.Undos);
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
        // Everything below is one pass over the ratings, the units or the raters of each item (a handful each), so the
        // overview stays cheap on the actor's thread with tens of thousands of ratings.
        var byRater = data.Ratings.GroupBy(r => r.Rater, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var ratersOf = data.Ratings.GroupBy(r => r.TaskId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(r => r.Rater).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
        var pairUnitsOf = UnitsByRater(pairUnits);
        var scoreUnitsOf = UnitsByRater(scoreUnits);
        var asides = data.SetAside.ToLookup(s => (s.Rater, s.Broken));
        var undoCount = undos.GroupBy(u => u.Rater, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var names = raters.Select(r => r.Name).Union(byRater.Keys).Order(StringComparer.Ordinal).ToList();
        var byName = raters.ToDictionary(r => r.Name, StringComparer.Ordinal);
        var overview = names.Select(name =>
        {
            var mine = byRater.GetValueOrDefault(name) ?? [];
            long? first = mine.Count > 0 ? mine.Min(r => r.AtMs) : null, last = mine.Count > 0 ? mine.Max(r => r.AtMs) : null;
            double? perHour = mine.Count > 0 ? mine.Count / Math.Max(1.0, (last!.Value - first!.Value) / (double)HourMs) : null;
            int shared = mine.Select(r => r.TaskId).Distinct(StringComparer.Ordinal).Count(id => ratersOf[id].Count > 1);
            var known = byName.TryGetValue(name, out var k) ? k : (name, "", false, "removed");
            return new RaterOverview(name, known.Item4, known.Item3, mine.Count, asides[(name, false)].Count(), asides[(name, true)].Count(),
                undoCount.GetValueOrDefault(name), first, last, perHour,
                RaterAlpha(pairUnitsOf.GetValueOrDefault(name) ?? [], name, Agreement.Nominal),
                RaterAlpha(scoreUnitsOf.GetValueOrDefault(name) ?? [], name, Agreement.Interval), shared);
        }).ToList();

        var hours = data.Ratings.GroupBy(r => r.AtMs / HourMs * HourMs).OrderByDescending(g => g.Key).Take(MaxHours).OrderBy(g => g.Key)
            .Select(g => new HourCount(g.Key, g.GroupBy(r => r.Rater).OrderBy(x => x.Key, StringComparer.Ordinal)
                .ToDictionary(x => x.Key, x => x.Count(), StringComparer.Ordinal)))
            .ToList();

        // Items shared by each pair of raters, counted from each item's (few) raters.
        var sharedItems = new SortedDictionary<(string A, string B), int>(PairOrder.Instance);
        foreach (var list in ratersOf.Values)
            for (int i = 0; i < list.Count; i++)
                for (int j = i + 1; j < list.Count; j++)
                    sharedItems[(list[i], list[j])] = sharedItems.GetValueOrDefault((list[i], list[j])) + 1;
        var pairKappa = PairRatings(pairUnits);
        var scoreKappa = PairRatings(scoreUnits);
        var pairs = sharedItems.Select(kv => new PairAgreement(kv.Key.A, kv.Key.B, kv.Value,
            pairKappa.TryGetValue(kv.Key, out var pk) ? Rlft.Reward.Ratings.Agreement.CohenKappa(pk, kv.Key.A, kv.Key.B) : null,
            scoreKappa.TryGetValue(kv.Key, out var sk) ? Rlft.Reward.Ratings.Agreement.CohenKappa(sk, kv.Key.A, kv.Key.B) : null)).ToList();

        var flagged = data.SetAside.Where(s => s.Broken).GroupBy(s => s.ItemId)
            .Select(g => new FlaggedItem(g.Key, Excerpt(items[g.Key]), data.Resolved.TryGetValue(g.Key, out var o) ? o : null, g.ToList()))
            .ToList();
        return new FeedbackOverview(inputs.AtMs, inputs.Pending, inputs.Rated, inputs.TimedOut, inputs.Discarded, data.Ratings.Count,
            Rlft.Actors.Feedback.Agreement.KrippendorffAlpha(pairUnits.Values.Select(u => (IReadOnlyList<double>)[.. u.Values]), Agreement.Nominal),
            Rlft.Actors.Feedback.Agreement.KrippendorffAlpha(scoreUnits.Values.Select(u => (IReadOnlyList<double>)[.. u.Values]), Agreement.Interval),
            overview, hours, pairs, flagged);
    }

    static Dictionary<string, double> Unit(Dictionary<string, Dictionary<string, double>> units, string key) =>
        units.TryGetValue(key, out var u) ? u : units[key] = new Dictionary<string, double>(StringComparer.Ordinal);

    /// <summary>rater → the units they answered.</summary>
    static Dictionary<string, List<Dictionary<string, double>>> UnitsByRater(Dictionary<string, Dictionary<string, double>> units)
    {
        var result = new Dictionary<string, List<Dictionary<string, double>>>(StringComparer.Ordinal);
        foreach (var unit in units.Values)
            foreach (var rater in unit.Keys)
                (result.TryGetValue(rater, out var list) ? list : result[rater] = []).Add(unit);
        return result;
    }

    /// <summary>α over two-value units (this rater's answer, another rater's answer) for every unit both answered.</summary>
    public static double? RaterAlpha(IEnumerable<Dictionary<string, double>> unitsOfRater, string rater, Func<double, double, double> delta) =>
        Rlft.Actors.Feedback.Agreement.KrippendorffAlpha(
            unitsOfRater.SelectMany(u => u.Where(kv => kv.Key != rater).Select(kv => (IReadOnlyList<double>)[u[rater], kv.Value])),
            delta);

    /// <summary>(a, b) with a &lt; b → both raters' answers on every unit both answered, as Cohen's κ reads them.</summary>
    static Dictionary<(string, string), List<ScoreRating>> PairRatings(Dictionary<string, Dictionary<string, double>> units)
    {
        var result = new Dictionary<(string, string), List<ScoreRating>>();
        foreach (var (key, unit) in units)
        {
            var names = unit.Keys.Order(StringComparer.Ordinal).ToList();
            for (int i = 0; i < names.Count; i++)
                for (int j = i + 1; j < names.Count; j++)
                {
                    var pair = (names[i], names[j]);
                    if (!result.TryGetValue(pair, out var list)) result[pair] = list = [];
                    list.Add(new ScoreRating(key, names[i], unit[names[i]]));
                    list.Add(new ScoreRating(key, names[j], unit[names[j]]));
                }
        }
        return result;
    }

    sealed class PairOrder : IComparer<(string A, string B)>
    {
        public static readonly PairOrder Instance = new();
        public int Compare((string A, string B) x, (string A, string B) y)
        {
            int c = string.CompareOrdinal(x.A, y.A);
            return c != 0 ? c : string.CompareOrdinal(x.B, y.B);
        }
    }

    static string Excerpt(FeedbackItem item)
    {
        string text = item.Messages is { Count: > 0 } m ? m[^1].Content : item.Prompt;
        return text.Length <= 200 ? text : text[..200] + "…";
    }
}
