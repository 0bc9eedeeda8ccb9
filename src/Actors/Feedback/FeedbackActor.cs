using Akka.Actor;
using Akka.Event;
using Akka.Pattern;
using Akka.Persistence;

namespace Rlft.Actors.Feedback;

/// <summary>Actor settings: the journal id, how long a rater may hold an item, how often timeouts are checked.</summary>
/// <summary><paramref name="SnapshotEvery"/>: events between snapshots (0: never), which bounds recovery time.</summary>
public sealed record FeedbackActorSettings(string PersistenceId, TimeSpan Lease, TimeSpan TickInterval, int SnapshotEvery = 100_000)
{
    public static readonly FeedbackActorSettings Default = new("rlft-feedback", TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(1));
}

/// <summary>
/// The queue of items awaiting human ratings, the leases handed to raters and the ratings, as an event-sourced
/// actor. Commands are decided against <see cref="FeedbackState"/> (which already includes events still being
/// written) and persisted with PersistAsync so concurrent ratings share journal writes; every reply waits for
/// the events before it to be durable (a persist callback or DeferAsync), so a 201 never precedes the write.
/// A failed write stops the actor; its supervisor restarts it and recovery rebuilds state from the journal.
/// </summary>
public sealed class FeedbackActor : ReceivePersistentActor, IWithTimers
{
    readonly FeedbackActorSettings _settings;
    readonly TimeProvider _clock;
    FeedbackState _state = new();
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

        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is FeedbackSnapshot snapshot) _state = FeedbackState.FromSnapshot(snapshot);
        });
        Recover<IFeedbackEvent>(e =>
        {
            _state.Apply(e);
            _sinceSnapshot++;
        });
        Recover<RecoveryCompleted>(_ =>
        {
            _log.Info("feedback: recovered {0} open items, {1} ratings", _state.OpenCount, _state.RatingCount);
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

        Command<FeedbackTick>(_ =>
        {
            foreach (var e in _state.DecideTimeouts(Now)) Record(e);
            MaybeSnapshot();
        });

        Command<SaveSnapshotSuccess>(_ => { });
        Command<SaveSnapshotFailure>(f => _log.Warning("feedback: snapshot failed ({0}); recovery replays more events", f.Cause.Message));

        Command<GetStats>(_ => Reply(_state.Stats()));
        Command<GetRaterStats>(q => Reply(new RaterStats(q.Rater, _state.RatedBy(q.Rater), _state.OpenCount)));
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
