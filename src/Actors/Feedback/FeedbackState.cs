namespace Rlft.Actors.Feedback;

/// <summary>
/// The feedback queue as plain data: the actor asks it what to do (<c>Decide*</c>, which never mutate) and
/// applies the resulting events (<see cref="Apply"/>), both live and during recovery, so state is always a fold of
/// the journal. Times are Unix milliseconds passed in by the caller.
/// </summary>
public sealed class FeedbackState
{
    sealed class Entry(FeedbackItem item, long enqueuedAt, long order)
    {
        public FeedbackItem Item { get; } = item;
        public long EnqueuedAt { get; } = enqueuedAt;
        public long Deadline { get; } = enqueuedAt + item.TimeoutMs;
        public long Order { get; } = order;
        public List<RatingRecord> Ratings { get; } = [];
        public Dictionary<string, long> Leases { get; } = new(StringComparer.Ordinal); // rater -> expiry
        public HashSet<string> EverLeased { get; } = new(StringComparer.Ordinal);
        public ResolutionOutcome? Outcome { get; set; }
        public int ActiveLeases(long now) => Leases.Count(l => l.Value > now);
    }

    readonly Dictionary<string, Entry> _items = new(StringComparer.Ordinal);
    readonly SortedDictionary<long, Entry> _open = new();
    readonly Dictionary<string, string> _currentLease = new(StringComparer.Ordinal); // rater -> item id
    readonly Dictionary<string, int> _perRater = new(StringComparer.Ordinal);
    readonly List<ItemResolved> _resolutions = [];
    readonly List<RatingRecord> _ratings = [];

    public int OpenCount => _open.Count;
    public int RatingCount => _ratings.Count;
    public IReadOnlyList<ItemResolved> Resolutions => _resolutions;

    public int RatedBy(string rater) => _perRater.GetValueOrDefault(rater);

    /// <summary>Events for the new items, or the reason the batch is refused (nothing is added then).</summary>
    public (IReadOnlyList<ItemEnqueued> Events, string? Problem) DecideEnqueue(IReadOnlyList<FeedbackItem> items, long now)
    {
        var events = new List<ItemEnqueued>();
        var batch = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < items.Count; i++)
        {
            var item = items[i];
            if (item is null) return ([], $"items[{i}]: missing");
            if (item.Problem() is { } p) return ([], $"items[{i}].{p}");
            if (!batch.Add(item.Id)) return ([], $"items[{i}].id: '{item.Id}' appears twice in the batch");
            if (_items.TryGetValue(item.Id, out var existing))
            {
                if (!existing.Item.SameAs(item)) return ([], $"items[{i}].id: '{item.Id}' already exists with different content");
                continue;
            }
            events.Add(new ItemEnqueued(item, now));
        }
        return (events, null);
    }

    /// <summary>The rater's live lease if they hold one, else a new lease on the oldest item they may take.</summary>
    public (TaskOffer? Offer, LeaseGranted? Event) DecideNext(string rater, long now, long leaseMs)
    {
        if (_currentLease.TryGetValue(rater, out var held) && _items[held] is { Outcome: null } h
            && h.Leases.TryGetValue(rater, out long expiry) && expiry > now && !h.Ratings.Any(r => r.Rater == rater))
            return (new TaskOffer(h.Item, expiry), null);
        foreach (var e in _open.Values)
        {
            // Never the same rater twice, and never more raters at a time than the item still needs.
            if (e.EverLeased.Contains(rater) || e.Deadline <= now) continue;
            if (e.Ratings.Count + e.ActiveLeases(now) >= e.Item.RatersNeeded) continue;
            long until = Math.Min(now + leaseMs, e.Deadline);
            return (new TaskOffer(e.Item, until), new LeaseGranted(e.Item.Id, rater, now, until));
        }
        return (null, null);
    }

    /// <summary>
    /// The events a rating causes (the rating, and the item's close when it was the last one needed), the
    /// original rating for an identical resubmission, or a rejection.
    /// </summary>
    public (IReadOnlyList<IFeedbackEvent> Events, RatingRecord? Existing, RatingRejected? Rejection) DecideRating(SubmitRating cmd, string ratingId, long now)
    {
        if (!_items.TryGetValue(cmd.TaskId, out var e))
            return ([], null, new RatingRejected(RejectionCode.UnknownTask, $"unknown task '{cmd.TaskId}'"));
        var mine = e.Ratings.FirstOrDefault(r => r.Rater == cmd.Rater);
        if (mine is not null)
            return mine.SameAnswer(cmd.Choice, cmd.Scores)
                ? ([], mine, null)
                : ([], null, new RatingRejected(RejectionCode.Conflict, $"task '{cmd.TaskId}' was already rated by you with a different answer"));
        if (!e.EverLeased.Contains(cmd.Rater))
            return ([], null, new RatingRejected(RejectionCode.NotLeased, $"task '{cmd.TaskId}' was not handed to you (ask /api/v1/tasks/next)"));
        if (e.Outcome is not null)
            return ([], null, new RatingRejected(RejectionCode.Closed, $"task '{cmd.TaskId}' is closed ({(e.Outcome == ResolutionOutcome.TimedOut ? "timed out" : "fully rated")})"));
        if (CheckAnswer(e.Item, cmd) is { } problem)
            return ([], null, new RatingRejected(RejectionCode.Invalid, problem));
        var rating = new RatingRecord(ratingId, cmd.TaskId, cmd.Rater, cmd.Choice, cmd.Scores, now);
        var events = new List<IFeedbackEvent> { new RatingRecorded(rating) };
        if (e.Ratings.Count + 1 >= e.Item.RatersNeeded)
            events.Add(new ItemClosed(e.Item.Id, ResolutionOutcome.Rated, $"{e.Item.RatersNeeded} of {e.Item.RatersNeeded} ratings", now));
        return (events, null, null);
    }

    static string? CheckAnswer(FeedbackItem item, SubmitRating cmd)
    {
        var ids = item.Completions.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        if (item.Kind == FeedbackKind.Compare)
        {
            if (cmd.Choice is null) return "choice: a compare task needs \"choice\" (a completion id), not \"scores\"";
            return ids.Contains(cmd.Choice) ? null : $"choice: '{cmd.Choice}' is not a completion of this task (expected one of {string.Join(", ", ids)})";
        }
        if (cmd.Scores is null) return "scores: a score task needs \"scores\" ({completion id: 1..7}), not \"choice\"";
        foreach (var (id, v) in cmd.Scores)
        {
            if (!ids.Contains(id)) return $"scores.{id}: not a completion of this task";
            if (v is < 1 or > 7) return $"scores.{id}: {v} is outside 1..7";
        }
        var missing = ids.Where(id => !cmd.Scores.ContainsKey(id)).ToList();
        return missing.Count == 0 ? null : $"scores: missing a score for {string.Join(", ", missing)}";
    }

    /// <summary>Items whose timeout has passed: they close with the fallback marker, keeping any ratings they got.</summary>
    public IReadOnlyList<ItemClosed> DecideTimeouts(long now) =>
        _open.Values.Where(e => e.Deadline <= now)
            .Select(e => new ItemClosed(e.Item.Id, ResolutionOutcome.TimedOut,
                $"timed out with {e.Ratings.Count} of {e.Item.RatersNeeded} ratings", now))
            .ToList();

    public ItemResolved? Apply(IFeedbackEvent ev)
    {
        switch (ev)
        {
            case ItemEnqueued x:
                var entry = new Entry(x.Item, x.AtMs, _items.Count);
                _items[x.Item.Id] = entry;
                _open[entry.Order] = entry;
                return null;
            case LeaseGranted x:
                var leased = _items[x.ItemId];
                leased.Leases[x.Rater] = x.ExpiresAtMs;
                leased.EverLeased.Add(x.Rater);
                _currentLease[x.Rater] = x.ItemId;
                return null;
            case RatingRecorded x:
                var rated = _items[x.Rating.TaskId];
                rated.Ratings.Add(x.Rating);
                rated.Leases.Remove(x.Rating.Rater);
                _ratings.Add(x.Rating);
                _perRater[x.Rating.Rater] = RatedBy(x.Rating.Rater) + 1;
                return null;
            case ItemClosed x:
                var closed = _items[x.ItemId];
                if (closed.Outcome is not null) return null;
                closed.Outcome = x.Outcome;
                closed.Leases.Clear();
                _open.Remove(closed.Order);
                var resolved = new ItemResolved(_resolutions.Count + 1, x.ItemId, closed.Item.Origin, x.Outcome,
                    x.Outcome == ResolutionOutcome.TimedOut ? closed.Item.Fallback : null, x.Reason, closed.Ratings.ToList(), x.AtMs);
                _resolutions.Add(resolved);
                return resolved;
            default:
                throw new ArgumentException($"unknown feedback event {ev.GetType().Name}");
        }
    }

    public FeedbackStats Stats()
    {
        int rated = _resolutions.Count(r => r.Outcome == ResolutionOutcome.Rated);
        var compare = _items.Values.Where(e => e.Item.Kind == FeedbackKind.Compare)
            .Select(e => e.Ratings.Select(r => (double)e.Item.Completions.ToList().FindIndex(c => c.Id == r.Choice)).ToList());
        var score = _items.Values.Where(e => e.Item.Kind == FeedbackKind.Score)
            .SelectMany(e => e.Item.Completions.Select(c => e.Ratings.Where(r => r.Scores is not null).Select(r => (double)r.Scores![c.Id]).ToList()));
        return new FeedbackStats(_open.Count, rated, _resolutions.Count - rated, _ratings.Count,
            new SortedDictionary<string, int>(_perRater, StringComparer.Ordinal),
            Agreement.KrippendorffAlpha(compare, Agreement.Nominal),
            Agreement.KrippendorffAlpha(score, Agreement.Interval));
    }

    public ItemRatings RatingsOf(IReadOnlyList<string> ids)
    {
        var known = ids.Where(_items.ContainsKey).Select(id => _items[id]).ToList();
        return new ItemRatings(known.SelectMany(e => e.Ratings).ToList(), known.Where(e => e.Outcome is not null).Select(e => e.Item.Id).ToList());
    }

    /// <summary>The whole state as plain data; <see cref="FromSnapshot"/> rebuilds an identical state.</summary>
    public FeedbackSnapshot ToSnapshot() =>
        new(_items.Values.OrderBy(e => e.Order)
                .Select(e => new SnapshotItem(e.Item, e.EnqueuedAt, new Dictionary<string, long>(e.Leases, StringComparer.Ordinal), e.EverLeased.Order(StringComparer.Ordinal).ToList()))
                .ToList(),
            _ratings.ToList(),
            _resolutions.ToList(),
            new Dictionary<string, string>(_currentLease, StringComparer.Ordinal));

    public static FeedbackState FromSnapshot(FeedbackSnapshot snapshot)
    {
        var s = new FeedbackState();
        foreach (var i in snapshot.Items)
        {
            var e = new Entry(i.Item, i.EnqueuedAtMs, s._items.Count);
            foreach (var (rater, expiry) in i.Leases) e.Leases[rater] = expiry;
            e.EverLeased.UnionWith(i.EverLeased);
            s._items[i.Item.Id] = e;
            s._open[e.Order] = e;
        }
        foreach (var r in snapshot.Ratings)
        {
            s._items[r.TaskId].Ratings.Add(r);
            s._ratings.Add(r);
            s._perRater[r.Rater] = s.RatedBy(r.Rater) + 1;
        }
        foreach (var r in snapshot.Resolutions)
        {
            var e = s._items[r.ItemId];
            e.Outcome = r.Outcome;
            s._open.Remove(e.Order);
            s._resolutions.Add(r);
        }
        foreach (var (rater, item) in snapshot.CurrentLeases) s._currentLease[rater] = item;
        return s;
    }

    public ExportData Export() =>
        new(_items.Values.OrderBy(e => e.Order).Select(e => e.Item).ToList(), _ratings.ToList(),
            _items.Values.Where(e => e.Outcome is not null).ToDictionary(e => e.Item.Id, e => e.Outcome!.Value, StringComparer.Ordinal));
}
