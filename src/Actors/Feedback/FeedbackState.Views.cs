namespace Rlft.Actors.Feedback;

/// <summary>Read-only views of the feedback state (stats, progress, export, the admin overview) and its snapshots.</summary>
internal sealed partial class FeedbackState
{
    /// <summary>Pending: open items short of ratings. Rated: items with all their ratings, closed or still in their undo window.</summary>
    public FeedbackStats Stats()
    {
        int rated = _resolutions.Count(r => r.Outcome == ResolutionOutcome.Rated);
        return new FeedbackStats(_open.Count, rated + _settling.Count, _resolutions.Count - rated, _ratings.Count,
            new SortedDictionary<string, int>(_perRater, StringComparer.Ordinal),
            Agreement.KrippendorffAlpha(PairUnits(), Agreement.Nominal),
            Agreement.KrippendorffAlpha(ScoreUnits(), Agreement.Interval));
    }

    /// <summary>Per pair item, each rater's answer as a category (A 0, B 1, tie 2, both bad 3).</summary>
    IEnumerable<IReadOnlyList<double>> PairUnits() =>
        _items.Values.Where(e => e.Item.Kind == FeedbackKind.Compare).Select(e => (IReadOnlyList<double>)e.Ratings.Select(r => PairCategory(e.Item, r)).ToList());

    /// <summary>Per score item, completion and criterion, the raters' 1..7 values.</summary>
    IEnumerable<IReadOnlyList<double>> ScoreUnits() =>
        _items.Values.Where(e => e.Item.Kind == FeedbackKind.Score)
            .SelectMany(e => ScoreCells(e.Item).Select(cell => (IReadOnlyList<double>)e.Ratings.Select(r => ScoreOf(r, cell)).OfType<double>().ToList()));

    internal static double PairCategory(FeedbackItem item, RatingRecord r) => r.Verdict switch
    {
        ItemParts.Tie => 2,
        ItemParts.BothBad => 3,
        _ => item.Completions[0].Id == r.Choice ? 0 : 1,
    };

    internal static IEnumerable<(string Completion, string? Criterion)> ScoreCells(FeedbackItem item) =>
        item.Criteria.Count == 0
            ? item.Completions.Select(c => (c.Id, (string?)null))
            : item.Completions.SelectMany(c => item.Criteria.Select(k => (c.Id, (string?)k)));

    internal static double? ScoreOf(RatingRecord r, (string Completion, string? Criterion) cell) =>
        cell.Criterion is null
            ? r.Scores is not null && r.Scores.TryGetValue(cell.Completion, out int s) ? s : null
            : r.Criteria is not null && r.Criteria.TryGetValue(cell.Completion, out var byName) && byName.TryGetValue(cell.Criterion, out int v) ? v : null;

    /// <summary>
    /// A rater's progress: ratings in all and since <paramref name="since"/>, skips and flags, the open items still
    /// waiting for them (not yet handed to them and short of ratings), and the rating they may still undo.
    /// </summary>
    public RaterProgress Progress(string rater, long since, long now)
    {
        long undoWindowMs = UndoWindowMs;
        var mine = _byRater.GetValueOrDefault(rater) ?? [];
        int remaining = _open.Values.Count(e => e.Deadline > now && !e.EverLeased.Contains(rater));
        string? undo = null;
        long? until = null;
        if (undoWindowMs > 0 && _lastRating.TryGetValue(rater, out var last) && _ratingsById[last] is var r
            && r.AtMs + undoWindowMs > now && _items[r.TaskId].Outcome is null)
            (undo, until) = (last, r.AtMs + undoWindowMs);
        return new RaterProgress(rater, mine.Count, mine.Count(x => x.AtMs >= since),
            _setAside.Count(s => s.Rater == rater && !s.Broken), _setAside.Count(s => s.Rater == rater && s.Broken),
            remaining, _open.Count, undo, until);
    }

    public ItemRatings RatingsOf(IReadOnlyList<string> ids)
    {
        var known = ids.Where(_items.ContainsKey).Select(id => _items[id]).ToList();
        return new ItemRatings(known.SelectMany(e => e.Ratings).ToList(), known.Where(e => e.Outcome is not null).Select(e => e.Item.Id).ToList());
    }

    public ExportData Export() =>
        new(_items.Values.OrderBy(e => e.Order).Select(e => e.Item).ToList(), _ratings.ToList(),
            _items.Values.Where(e => e.Outcome is not null).ToDictionary(e => e.Item.Id, e => e.Outcome!.Value, StringComparer.Ordinal))
        {
            Undone = _undone.ToList(),
            SetAside = _setAside.ToList(),
            Guidelines = Guidelines.Versions(),
        };

    /// <summary>Copies of what the admin overview is computed from (cheap); the computation can then leave the actor's thread.</summary>
    public OverviewInputs OverviewInputs(long now) =>
        new(Export(), Raters.Effective(), _undos.ToList(), _open.Count,
            _resolutions.Count(r => r.Outcome == ResolutionOutcome.Rated) + _settling.Count,
            _resolutions.Count(r => r.Outcome == ResolutionOutcome.TimedOut),
            _resolutions.Count(r => r.Outcome == ResolutionOutcome.Discarded), now);

    public FeedbackOverview Overview(long now) => FeedbackOverviewBuilder.Build(OverviewInputs(now));

    /// <summary>The whole state as plain data; <see cref="FromSnapshot"/> rebuilds an identical state.</summary>
    public FeedbackSnapshot ToSnapshot() =>
        new(_items.Values.OrderBy(e => e.Order)
                .Select(e => new SnapshotItem(e.Item, e.EnqueuedAt, new Dictionary<string, long>(e.Leases, StringComparer.Ordinal), e.EverLeased.Order(StringComparer.Ordinal).ToList())
                {
                    LeaseGuidelines = new Dictionary<string, GuidelineRef>(e.LeaseGuidelines, StringComparer.Ordinal),
                })
                .ToList(),
            _ratings.ToList(),
            _resolutions.ToList(),
            new Dictionary<string, string>(_currentLease, StringComparer.Ordinal))
        {
            SetAside = _setAside.ToList(),
            Undone = _undone.ToList(),
            Undos = _undos.ToList(),
            LastRating = new Dictionary<string, string>(_lastRating, StringComparer.Ordinal),
            Guidelines = Guidelines.All(),
            Raters = Raters.JournalState(),
        };

    public static FeedbackState FromSnapshot(FeedbackSnapshot snapshot, IReadOnlyList<RaterEntry>? configuredRaters = null, long undoWindowMs = 0)
    {
        var s = new FeedbackState(configuredRaters, undoWindowMs);
        foreach (var i in snapshot.Items)
        {
            var e = new Entry(i.Item, i.EnqueuedAtMs, s._items.Count);
            foreach (var (rater, expiry) in i.Leases) e.Leases[rater] = expiry;
            foreach (var (rater, g) in i.LeaseGuidelines) e.LeaseGuidelines[rater] = g;
            e.EverLeased.UnionWith(i.EverLeased);
            s._items[i.Item.Id] = e;
        }
        foreach (var r in snapshot.Ratings)
        {
            s._items[r.TaskId].Ratings.Add(r);
            s.AddRating(r);
        }
        foreach (var r in snapshot.Resolutions)
        {
            s._items[r.ItemId].Outcome = r.Outcome;
            s._resolutions.Add(r);
        }
        foreach (var e in s._items.Values) s.Place(e);
        foreach (var (rater, item) in snapshot.CurrentLeases) s._currentLease[rater] = item;
        foreach (var x in snapshot.SetAside)
        {
            s._items[x.ItemId].SetAside.Add(x);
            s._setAside.Add(x);
        }
        s._undone.AddRange(snapshot.Undone);
        s._undos.AddRange(snapshot.Undos);
        foreach (var (rater, id) in snapshot.LastRating) s._lastRating[rater] = id;
        foreach (var g in snapshot.Guidelines) s.Guidelines.Apply(g);
        s.Raters.Restore(snapshot.Raters);
        return s;
    }
}
