using Akka.Actor;
using Akka.Event;
using Akka.Pattern;
using Akka.Persistence;

namespace Rlft.Actors.Feedback;

/// <summary>
/// Actor settings: the journal id, how long a rater may hold an item, how often timeouts are checked;
/// <paramref name="SnapshotEvery"/>: events between snapshots (0: never), which bounds recovery time.
/// </summary>
internal sealed record FeedbackActorSettings(string PersistenceId, TimeSpan Lease, TimeSpan TickInterval, int SnapshotEvery = 100_000)
{
    public static readonly FeedbackActorSettings Default = new("rlft-feedback", TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(1));

    /// <summary>How long after a rating its rater may take it back (zero: never).</summary>
    public TimeSpan UndoWindow { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>Flags as broken that close an item as discarded (0: only the admin discards).</summary>
    public int CloseAfterFlags { get; init; }
    public IReadOnlyList<RaterEntry> Raters { get; init; } = [];
    /// <summary>Guideline name → Markdown from the config; a changed text becomes a new version at start.</summary>
    public IReadOnlyDictionary<string, string> Guidelines { get; init; } = new Dictionary<string, string>();
    /// <summary>Kept current with the journal's raters for the request path (null: nobody is told).</summary>
    public RaterRegistry? Registry { get; init; }
}

/// <summary>
/// The queue of items awaiting human ratings, the leases handed to raters and the ratings, as an event-sourced
/// actor. Commands are decided against <see cref="FeedbackState"/> (which already includes events still being
/// written) and persisted with PersistAsync so concurrent ratings share journal writes; every reply waits for
/// the events before it to be durable (a persist callback or DeferAsync), so a 201 never precedes the write.
/// A failed write stops the actor; its supervisor restarts it and recovery rebuilds state from the journal.
/// </summary>
internal sealed class FeedbackActor : ReceivePersistentActor, IWithTimers
{
    readonly FeedbackActorSettings _settings;
    readonly TimeProvider _clock;
    FeedbackState _state;
    int _inFlight;          // events recorded and not yet confirmed by the journal
    long _sinceSnapshot;    // events since the last snapshot (or since recovery started)
    readonly HashSet<IActorRef> _subscribers = [];
    readonly ILoggingAdapter _log = Context.GetLogger();

    public override string PersistenceId => _settings.PersistenceId;
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The actor under a backoff supervisor: send everything to the supervisor, it forwards.</summary>
    public static Props Props(FeedbackActorSettings settings, TimeProvider? clock = null) =>
        BackoffSupervisor.Props(Backoff.OnStop(
            Akka.Actor.Props.Create(() => new FeedbackActor(settings, clock ?? TimeProvider.System)),
            "feedback", TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(5), 0.2, maxNrOfRetries: -1));

    public FeedbackActor(FeedbackActorSettings settings, TimeProvider clock)
    {
        _settings = settings;
        _clock = clock;
        _state = new FeedbackState(settings.Raters, UndoWindowMs);

        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is FeedbackSnapshot snapshot) _state = FeedbackState.FromSnapshot(snapshot, settings.Raters, UndoWindowMs);
        });
        Recover<IFeedbackEvent>(e =>
        {
            _state.Apply(e);
            _sinceSnapshot++;
        });
        Recover<RecoveryCompleted>(_ =>
        {
            _log.Info("feedback: recovered {0} open items, {1} ratings", _state.OpenCount, _state.RatingCount);
            // A configured guideline whose text changed since it was last read becomes a new version.
            foreach (var (name, markdown) in _settings.Guidelines.OrderBy(g => g.Key, StringComparer.Ordinal))
                if (_state.Guidelines.Decide(name, markdown, "config", Now) is { } e) Record(e);
            _settings.Registry?.Replace(_state.Raters.Effective());
            Timers.StartPeriodicTimer("tick", FeedbackTick.Instance, _settings.TickInterval);
        });

        Command<EnqueueItems>(cmd =>
        {
            var (events, problem) = _state.DecideEnqueue(cmd.Items, Now);
            if (problem is not null) { Reply(new EnqueueRejected(problem)); return; }
            foreach (var e in events) Record(e);
            Reply(new ItemsEnqueued(cmd.Items.Select(i => i.Id).ToList(), events.Count));
        });

        Command<NextTask>(cmd =>
        {
            var (offer, lease) = _state.DecideNext(cmd.Rater, Now, (long)_settings.Lease.TotalMilliseconds);
            if (lease is not null) Record(lease);
            Reply(offer is null ? NoTask.Instance : offer);
        });

        Command<SubmitRating>(cmd =>
        {
            var (events, existing, rejection) = _state.DecideRating(cmd, Guid.NewGuid().ToString("N"), Now);
            foreach (var e in events) Record(e);
            Reply(rejection as object
                ?? (existing is not null ? new RatingAccepted(existing.RatingId, Duplicate: true)
                    : new RatingAccepted(((RatingRecorded)events[0]).Rating.RatingId, Duplicate: false)));
        });

        Command<SetAsideTask>(cmd =>
        {
            var (events, duplicate, rejection) = _state.DecideSetAside(cmd, Now, _settings.CloseAfterFlags);
            foreach (var e in events) Record(e);
            Reply(rejection as object ?? new TaskSetAside(cmd.TaskId, cmd.Broken, duplicate));
        });

        Command<UndoRating>(cmd =>
        {
            var (undone, duplicate, rejection) = _state.DecideUndo(cmd, Now, (long)_settings.Lease.TotalMilliseconds);
            if (undone is not null) Record(undone);
            Reply(rejection as object ?? duplicate ?? new UndoAccepted(undone!.RatingId, undone.TaskId, Duplicate: false));
        });

        Command<DiscardItem>(cmd =>
        {
            var (closed, duplicate, rejection) = _state.DecideDiscard(cmd, Now);
            if (closed is not null) Record(closed);
            Reply(rejection as object ?? new ItemDiscarded(cmd.ItemId, duplicate));
        });

        Command<SetGuideline>(cmd =>
        {
            var e = _state.Guidelines.Decide(cmd.Name, cmd.Markdown, cmd.Source, Now);
            if (e is not null) Record(e);
            var current = _state.Guidelines.Current(cmd.Name)!;
            Reply(new GuidelineStored(new GuidelineRef(current.Name, current.Version), e is not null));
        });

        Command<ChangeRater>(cmd =>
        {
            var (e, rejection) = _state.Raters.Decide(cmd, Now);
            if (e is not null) Record(e);
            Reply(rejection as object ?? new RaterChanged(cmd.Name, cmd.Change));
        });

        Command<FeedbackTick>(_ =>
        {
            foreach (var e in _state.DecideCloses(Now)) Record(e);
            MaybeSnapshot();
        });

        Command<SaveSnapshotSuccess>(_ => { });
        Command<SaveSnapshotFailure>(f => _log.Warning("feedback: snapshot failed ({0}); recovery replays more events", f.Cause.Message));

        Command<GetStats>(_ => Reply(_state.Stats()));
        Command<GetRaterStats>(q => Reply(new RaterStats(q.Rater, _state.RatedBy(q.Rater), _state.OpenCount)));
        Command<GetRaterProgress>(q => Reply(_state.Progress(q.Rater, q.SinceMs, Now)));
        Command<GetGuidelines>(_ => Reply(new GuidelineList(_state.Guidelines.Versions())));
        // The overview's agreement figures take a while on a large journal: computed off this thread, from copies.
        Command<GetOverview>(_ =>
        {
            var inputs = _state.OverviewInputs(Now);
            var sender = Sender;
            DeferAsync(inputs, i => Task.Run(() => FeedbackOverviewBuilder.Build(i)).PipeTo(sender));
        });
        Command<GetExport>(_ => Reply(_state.Export()));
        Command<GetItemRatings>(q => Reply(_state.RatingsOf(q.ItemIds)));

        Command<SubscribeResolutions>(cmd =>
        {
            _subscribers.Add(cmd.Subscriber);
            Context.Watch(cmd.Subscriber);
            var subscriber = cmd.Subscriber;
            var backlog = _state.Resolutions.Where(r => r.Sequence > cmd.AfterSequence).ToList();
            DeferAsync(backlog, b => b.ForEach(r => subscriber.Tell(r)));
        });

        Command<Terminated>(t => _subscribers.Remove(t.ActorRef));
    }

    long Now => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    long UndoWindowMs => (long)_settings.UndoWindow.TotalMilliseconds;

    /// <summary>Applies the event now (later decisions must see it) and persists it; resolutions go out once durable.</summary>
    void Record(IFeedbackEvent e)
    {
        var resolved = _state.Apply(e);
        _inFlight++;
        _sinceSnapshot++;
        PersistAsync(e, _ =>
        {
            _inFlight--;
            if (resolved is not null)
                foreach (var s in _subscribers) s.Tell(resolved);
            // The request path learns of a rater change once it is durable, before the admin is answered.
            if (e is IRaterEvent) _settings.Registry?.Replace(_state.Raters.Effective());
            MaybeSnapshot();
        });
    }

    /// <summary>
    /// Snapshots only when no write is in flight: the state then holds exactly the durable events, so a snapshot
    /// never contains an event the journal might still refuse. Under constant load the tick retries.
    /// </summary>
    void MaybeSnapshot()
    {
        if (_settings.SnapshotEvery <= 0 || _inFlight > 0 || _sinceSnapshot < _settings.SnapshotEvery) return;
        SaveSnapshot(_state.ToSnapshot());
        _sinceSnapshot = 0;
    }

    /// <summary>Replies after every event recorded so far is durable (DeferAsync runs after pending PersistAsync callbacks).</summary>
    void Reply(object message)
    {
        var sender = Sender;
        DeferAsync(message, m => sender.Tell(m));
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        _log.Error(cause, "feedback: journal write failed at {0}; restarting from the journal", sequenceNr);
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    /// <summary>
    /// A rejected event was already applied to the in-memory state, which now differs from the journal: stop, so
    /// the supervisor restarts the actor from the journal (the senders waiting on that event get no answer).
    /// </summary>
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        _log.Error(cause, "feedback: journal rejected event {0} at {1}; restarting from the journal", @event.GetType().Name, sequenceNr);
        Context.Stop(Self);
    }
}
