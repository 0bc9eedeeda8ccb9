namespace Rlft.Actors.Feedback;

/// <summary>The rater workflow beyond rating: skip and flag (set aside), undo, and the admin's discard.</summary>
internal sealed partial class FeedbackState
{
    /// <summary>
    /// A rater puts back an item they were handed and have not rated: it goes to other raters, never to them again.
    /// Flagged broken, it is also listed for the admin, and closes as discarded once <paramref name="closeAfterFlags"/>
    /// raters flagged it (0: only the admin discards).
    /// </summary>
    public (IReadOnlyList<IFeedbackEvent> Events, bool Duplicate, RatingRejected? Rejection) DecideSetAside(SetAsideTask cmd, long now, int closeAfterFlags)
    {
        if (!_items.TryGetValue(cmd.TaskId, out var e))
            return ([], false, new RatingRejected(RejectionCode.UnknownTask, $"unknown task '{cmd.TaskId}'"));
        if (e.SetAside.FirstOrDefault(s => s.Rater == cmd.Rater) is { } earlier)
            return earlier.Broken == cmd.Broken && earlier.Reason == cmd.Reason
                ? ([], true, null)
                : ([], false, new RatingRejected(RejectionCode.Conflict, $"task '{cmd.TaskId}' was already {(earlier.Broken ? "flagged" : "skipped")} by you"));
        if (e.Ratings.Any(r => r.Rater == cmd.Rater))
            return ([], false, new RatingRejected(RejectionCode.Conflict, $"task '{cmd.TaskId}' was already rated by you (undo the rating first)"));
        if (!e.EverLeased.Contains(cmd.Rater))
            return ([], false, new RatingRejected(RejectionCode.NotLeased, $"task '{cmd.TaskId}' was not handed to you (ask /api/v1/tasks/next)"));
        if (e.Outcome is { } outcome)
            return ([], false, new RatingRejected(RejectionCode.Closed, $"task '{cmd.TaskId}' is closed ({ClosedText(outcome)})"));
        var events = new List<IFeedbackEvent> { new ItemSetAside(cmd.TaskId, cmd.Rater, cmd.Broken, cmd.Reason, now) };
        int flags = e.SetAside.Count(s => s.Broken) + (cmd.Broken ? 1 : 0);
        if (cmd.Broken && closeAfterFlags > 0 && flags >= closeAfterFlags)
            events.Add(new ItemClosed(cmd.TaskId, ResolutionOutcome.Discarded, $"flagged as broken by {flags} rater{(flags == 1 ? "" : "s")}", now));
        return (events, false, null);
    }

    /// <summary>
    /// Takes back the rater's most recent rating while its item is open and within the undo window of the rating; the
    /// rater then holds the item again. A repeat of an accepted undo is answered as a duplicate.
    /// </summary>
    public (RatingUndone? Event, UndoAccepted? Duplicate, RatingRejected? Rejection) DecideUndo(UndoRating cmd, long now, long leaseMs)
    {
        long windowMs = UndoWindowMs;
        if (cmd.RatingId is { } asked && _undone.FirstOrDefault(r => r.RatingId == asked && r.Rater == cmd.Rater) is { } done)
            return (null, new UndoAccepted(done.RatingId, done.TaskId, Duplicate: true), null);
        if (windowMs <= 0) return (null, null, new RatingRejected(RejectionCode.Conflict, "undo is turned off on this feedback node"));
        if (!_lastRating.TryGetValue(cmd.Rater, out var last))
            return (null, null, new RatingRejected(RejectionCode.Conflict, "nothing to undo (only your most recent rating can be undone, once)"));
        if (cmd.RatingId is { } id && id != last)
            return (null, null, new RatingRejected(RejectionCode.Conflict, $"rating '{id}' is not your most recent rating; only that one can be undone"));
        var rating = _ratingsById[last];
        if (now - rating.AtMs > windowMs)
            return (null, null, new RatingRejected(RejectionCode.Conflict, $"the undo window of {windowMs / 1000} s has passed"));
        var e = _items[rating.TaskId];
        if (e.Outcome is not null || e.Deadline <= now)
            return (null, null, new RatingRejected(RejectionCode.Closed, $"task '{rating.TaskId}' is closed; its ratings were passed on"));
        return (new RatingUndone(rating.RatingId, rating.TaskId, cmd.Rater, now, Math.Min(now + leaseMs, e.Deadline)), null, null);
    }

    /// <summary>The admin closes an open item as discarded; a repeat is a duplicate, a closed item a rejection.</summary>
    public (ItemClosed? Event, bool Duplicate, RatingRejected? Rejection) DecideDiscard(DiscardItem cmd, long now)
    {
        if (!_items.TryGetValue(cmd.ItemId, out var e))
            return (null, false, new RatingRejected(RejectionCode.UnknownTask, $"unknown item '{cmd.ItemId}'"));
        if (e.Outcome == ResolutionOutcome.Discarded) return (null, true, null);
        if (e.Outcome is { } outcome)
            return (null, false, new RatingRejected(RejectionCode.Closed, $"item '{cmd.ItemId}' is closed ({ClosedText(outcome)})"));
        return (new ItemClosed(cmd.ItemId, ResolutionOutcome.Discarded, cmd.Reason, now), false, null);
    }

    void ApplySetAside(ItemSetAside x)
    {
        var e = _items[x.ItemId];
        e.SetAside.Add(x);
        e.Leases.Remove(x.Rater);
        e.EverLeased.Add(x.Rater);
        if (_currentLease.GetValueOrDefault(x.Rater) == x.ItemId) _currentLease.Remove(x.Rater);
        _setAside.Add(x);
    }

    /// <summary>
    /// The rating leaves the item (kept in the undone list) and the rater holds the item again as their current task;
    /// the item they were handed meanwhile, untouched, goes back to the pool (they may be handed it again).
    /// </summary>
    void ApplyUndo(RatingUndone x)
    {
        var rating = _ratingsById[x.RatingId];
        var e = _items[x.TaskId];
        e.Ratings.Remove(rating);
        RemoveRating(rating);
        _undone.Add(rating);
        _undos.Add(x);
        _lastRating.Remove(x.Rater);
        if (_currentLease.TryGetValue(x.Rater, out var held) && held != x.TaskId && _items[held] is var other
            && other.Leases.Remove(x.Rater) && !other.Ratings.Any(r => r.Rater == x.Rater) && !other.SetAsideBy(x.Rater))
        {
            other.EverLeased.Remove(x.Rater);
            other.LeaseGuidelines.Remove(x.Rater);
        }
        e.Leases[x.Rater] = x.LeaseExpiresAtMs;
        _currentLease[x.Rater] = x.TaskId;
        Place(e);
    }
}
