namespace Rlft.Actors.Feedback;

/// <summary>
/// The feedback queue as plain data: the actor asks it what to do (<c>Decide*</c>, which never mutate) and
/// applies the resulting events (<see cref="Apply"/>), both live and during recovery, so state is always a fold of
/// the journal. Times are Unix milliseconds passed in by the caller. The rater workflow (skip, flag, undo, discard)
/// is in FeedbackState.Workflow.cs, the read-only views and snapshots in FeedbackState.Views.cs.
/// With an undo window, an item that has all its ratings stays open (handed to nobody) until its last rating can no
/// longer be undone, and closes then: a resolution, once sent, never has to be taken back. Without one it closes at once.
/// </summary>
internal sealed partial class FeedbackState(IReadOnlyList<RaterEntry>? configuredRaters = null, long undoWindowMs = 0)
{
    sealed class Entry(FeedbackItem item, long enqueuedAt, long order)
    {
        public FeedbackItem Item { get; } = item;
        public long EnqueuedAt { get; } = enqueuedAt;
        public long Deadline { get; } = enqueuedAt + item.TimeoutMs;
        public long Order { get; } = order;
        public List<RatingRecord> Ratings { get; } = [];
        public Dictionary<string, long> Leases { get; } = new(StringComparer.Ordinal); // rater -> expiry
        public Dictionary<string, GuidelineRef> LeaseGuidelines { get; } = new(StringComparer.Ordinal);
        public HashSet<string> EverLeased { get; } = new(StringComparer.Ordinal);
        public List<ItemSetAside> SetAside { get; } = [];
        public ResolutionOutcome? Outcome { get; set; }
        public int ActiveLeases(long now) => Leases.Count(l => l.Value > now);
        public bool SetAsideBy(string rater) => SetAside.Any(s => s.Rater == rater);
    }

    readonly Dictionary<string, Entry> _items = new(StringComparer.Ordinal);
    readonly SortedDictionary<long, Entry> _open = new();       // open and short of ratings, oldest first: what DecideNext hands out
    readonly SortedDictionary<long, Entry> _settling = new();   // open with all their ratings, waiting out the undo window
    readonly Dictionary<string, string> _currentLease = new(StringComparer.Ordinal); // rater -> item id
    readonly Dictionary<string, int> _perRater = new(StringComparer.Ordinal);
    readonly List<ItemResolved> _resolutions = [];
    readonly List<RatingRecord> _ratings = [];
    readonly Dictionary<string, RatingRecord> _ratingsById = new(StringComparer.Ordinal);
    readonly Dictionary<string, List<RatingRecord>> _byRater = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _lastRating = new(StringComparer.Ordinal); // rater -> the rating they may undo
    readonly List<ItemSetAside> _setAside = [];
    readonly List<RatingRecord> _undone = [];
    readonly List<RatingUndone> _undos = [];

    public long UndoWindowMs { get; } = undoWindowMs;
    public GuidelineBook Guidelines { get; } = new();
    public RaterBook Raters { get; } = new(configuredRaters ?? []);
    /// <summary>Items not yet closed (short of ratings, or fully rated and inside their undo window).</summary>
    public int OpenCount => _open.Count + _settling.Count;
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

    /// <summary>
    /// The rater's live lease if they hold one, else a new lease on the oldest item they may take; the offer carries
    /// the guideline the lease was granted under.
    /// </summary>
    public (TaskOffer? Offer, LeaseGranted? Event) DecideNext(string rater, long now, long leaseMs)
    {
        if (_currentLease.TryGetValue(rater, out var held) && _items[held] is { Outcome: null } h
            && h.Leases.TryGetValue(rater, out long expiry) && expiry > now && !h.Ratings.Any(r => r.Rater == rater))
            return (Offer(h.Item, expiry, h.LeaseGuidelines.GetValueOrDefault(rater)), null);
        foreach (var e in _open.Values)
        {
            // Never the same rater twice, and never more raters at a time than the item still needs.
            if (e.EverLeased.Contains(rater) || e.Deadline <= now) continue;
            if (e.Ratings.Count + e.ActiveLeases(now) >= e.Item.RatersNeeded) continue;
            long until = Math.Min(now + leaseMs, e.Deadline);
            var guideline = Guidelines.For(e.Item);
            return (Offer(e.Item, until, guideline), new LeaseGranted(e.Item.Id, rater, now, until) { Guideline = guideline });
        }
        return (null, null);
    }

    TaskOffer Offer(FeedbackItem item, long until, GuidelineRef? guideline) =>
        new(item, until)
        {
            Guideline = guideline is not null && Guidelines.Get(guideline) is { } g
                ? new GuidelineVersion(g.Name, g.Version, g.Markdown, g.AtMs, g.Source) : null,
        };

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
            return mine.SameAnswer(cmd)
                ? ([], mine, null)
                : ([], null, new RatingRejected(RejectionCode.Conflict, $"task '{cmd.TaskId}' was already rated by you with a different answer"));
        if (e.SetAsideBy(cmd.Rater))
            return ([], null, new RatingRejected(RejectionCode.NotLeased, $"task '{cmd.TaskId}' was set aside by you (skipped or flagged)"));
        if (!e.EverLeased.Contains(cmd.Rater))
            return ([], null, new RatingRejected(RejectionCode.NotLeased, $"task '{cmd.TaskId}' was not handed to you (ask /api/v1/tasks/next)"));
        if (e.Outcome is { } outcome)
            return ([], null, new RatingRejected(RejectionCode.Closed, $"task '{cmd.TaskId}' is closed ({ClosedText(outcome)})"));
        if (e.Ratings.Count >= e.Item.RatersNeeded)
            return ([], null, new RatingRejected(RejectionCode.Closed, $"task '{cmd.TaskId}' is closed (fully rated)"));
        if (RatingAnswers.Problem(e.Item, cmd) is { } problem)
            return ([], null, new RatingRejected(RejectionCode.Invalid, problem));
        var rating = new RatingRecord(ratingId, cmd.TaskId, cmd.Rater, cmd.Choice, cmd.Scores, now)
        {
            Verdict = cmd.Verdict,
            Strength = cmd.Strength,
            Rationale = cmd.Rationale,
            Criteria = cmd.Criteria,
            Guideline = e.LeaseGuidelines.GetValueOrDefault(cmd.Rater),
        };
        var events = new List<IFeedbackEvent> { new RatingRecorded(rating) };
        if (e.Ratings.Count + 1 >= e.Item.RatersNeeded && UndoWindowMs <= 0) events.Add(FullyRated(e, now));
        return (events, null, null);
    }

    static string ClosedText(ResolutionOutcome outcome) => outcome switch
    {
        ResolutionOutcome.TimedOut => "timed out",
        ResolutionOutcome.Discarded => "discarded as broken",
        _ => "fully rated",
    };

    static ItemClosed FullyRated(Entry e, long now) =>
        new(e.Item.Id, ResolutionOutcome.Rated, $"{e.Item.RatersNeeded} of {e.Item.RatersNeeded} ratings", now);

    /// <summary>
    /// Items whose time is up: fully rated ones once their last rating is past the undo window (or their timeout came
    /// first), and items whose timeout passed short of ratings, which close with the fallback marker keeping what they got.
    /// </summary>
    public IReadOnlyList<ItemClosed> DecideCloses(long now) =>
        [
            .. _settling.Values.Where(e => e.Deadline <= now || e.Ratings.Max(r => r.AtMs) + UndoWindowMs <= now).Select(e => FullyRated(e, now)),
            .. _open.Values.Where(e => e.Deadline <= now)
                .Select(e => new ItemClosed(e.Item.Id, ResolutionOutcome.TimedOut, $"timed out with {e.Ratings.Count} of {e.Item.RatersNeeded} ratings", now)),
        ];

    public ItemResolved? Apply(IFeedbackEvent ev)
    {
        switch (ev)
        {
            case ItemEnqueued x:
                var entry = new Entry(x.Item, x.AtMs, _items.Count);
                _items[x.Item.Id] = entry;
                Place(entry);
                return null;
            case LeaseGranted x:
                var leased = _items[x.ItemId];
                leased.Leases[x.Rater] = x.ExpiresAtMs;
                leased.EverLeased.Add(x.Rater);
                if (x.Guideline is { } g) leased.LeaseGuidelines[x.Rater] = g;
                else leased.LeaseGuidelines.Remove(x.Rater);
                _currentLease[x.Rater] = x.ItemId;
                return null;
            case RatingRecorded x:
                var rated = _items[x.Rating.TaskId];
                rated.Ratings.Add(x.Rating);
                rated.Leases.Remove(x.Rating.Rater);
                AddRating(x.Rating);
                Place(rated);
                _lastRating[x.Rating.Rater] = x.Rating.RatingId;
                return null;
            case ItemClosed x:
                var closed = _items[x.ItemId];
                if (closed.Outcome is not null) return null;
                closed.Outcome = x.Outcome;
                closed.Leases.Clear();
                Place(closed);
                var resolved = new ItemResolved(_resolutions.Count + 1, x.ItemId, closed.Item.Origin, x.Outcome,
                    x.Outcome == ResolutionOutcome.Rated ? null : closed.Item.Fallback, x.Reason, closed.Ratings.ToList(), x.AtMs);
                _resolutions.Add(resolved);
                return resolved;
            case ItemSetAside x:
                ApplySetAside(x);
                return null;
            case RatingUndone x:
                ApplyUndo(x);
                return null;
            case GuidelineSet x:
                Guidelines.Apply(x);
                return null;
            case IRaterEvent x:
                Raters.Apply(x);
                return null;
            default:
                throw new ArgumentException($"unknown feedback event {ev.GetType().Name}");
        }
    }

    /// <summary>Files an entry by its state: closed (in neither list), fully rated and settling, or open for raters.</summary>
    void Place(Entry e)
    {
        _open.Remove(e.Order);
        _settling.Remove(e.Order);
        if (e.Outcome is not null) return;
        (e.Ratings.Count >= e.Item.RatersNeeded ? _settling : _open)[e.Order] = e;
    }

    void AddRating(RatingRecord r)
    {
        _ratings.Add(r);
        _ratingsById[r.RatingId] = r;
        if (!_byRater.TryGetValue(r.Rater, out var mine)) _byRater[r.Rater] = mine = [];
        mine.Add(r);
        _perRater[r.Rater] = RatedBy(r.Rater) + 1;
    }

    void RemoveRating(RatingRecord r)
    {
        _ratings.Remove(r);
        _ratingsById.Remove(r.RatingId);
        _byRater[r.Rater].Remove(r);
        _perRater[r.Rater] = RatedBy(r.Rater) - 1;
    }
}
