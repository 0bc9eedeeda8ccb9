using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Protocol;
using Rlft.Actors.Telemetry;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Base of the actors that hold a replica (rollout, reward): while a newer weight version is fetched,
/// work is stashed; once every chunk has arrived intact the weights are applied and the work replayed.
/// Queries go through the coordinator, which forwards them to the weight server; chunk requests then
/// go to the server directly. An adapter-only version on a base the replica does not hold (a late joiner,
/// or a missed stage start) is preceded by a fetch of that base.
/// </summary>
public abstract class WeightFetchingActor : ReceiveActor, IWithStash
{
    readonly IActorRef _coordinator;
    WeightFetcher? _fetcher;
    IActorRef _weightServer = ActorRefs.Nobody;
    WeightKind _kind;
    long _wanted;
    Action<long, byte[]> _apply = (_, _) => { };
    // An adapter-only version waiting while its base is fetched.
    WeightsPublished? _afterBase;

    public IStash Stash { get; set; } = null!;

    protected WeightFetchingActor(IActorRef coordinator) => _coordinator = coordinator;

    /// <summary>The behaviour to return to after a fetch.</summary>
    protected abstract void Ready();

    /// <summary>The full version of <paramref name="kind"/> the replica's adapters would apply on (-1: none).</summary>
    protected virtual long BaseVersion(WeightKind kind) => -1;

    // Set when weights could not be applied (e.g. a model the replica cannot build): fetching again would fail the
    // same way, so every later request for weights is answered with this reason instead of looping.
    string? _cannotApply;
    DateTimeOffset _fetchStarted;

    /// <summary>
    /// Stashes the current message and fetches <paramref name="kind"/> weights of at least <paramref name="version"/>.
    /// When weights cannot be applied, <paramref name="failed"/> is called with the reason (now, or for the message
    /// when it is replayed) instead: the actor reports the work it cannot do rather than retrying forever.
    /// </summary>
    protected void FetchThenRetry(WeightKind kind, long version, Action<long, byte[]> apply, Action<string> failed)
    {
        if (_cannotApply is { } reason) { failed(reason); return; }
        Stash.Stash();
        (_kind, _wanted, _apply, _fetchStarted) = (kind, version, apply, DateTimeOffset.UtcNow);
        _coordinator.Tell(new QueryWeights(kind));
        Become(Fetching);
    }

    void Fetching()
    {
        Receive<WeightsPublished>(a =>
        {
            if (a.Kind != _kind) return;
            // Waiting for the base: only its announcement will do (a late answer to an earlier query is ignored).
            if (_afterBase is { } pending && (a.AdapterOnly || a.Version != pending.BaseVersion)) return;
            if (_afterBase is null && a.Version < _wanted) { AskAgainSoon(); return; }
            _weightServer = Sender;
            if (_afterBase is null && a.AdapterOnly && BaseVersion(a.Kind) != a.BaseVersion)
            {
                _afterBase = a;
                _weightServer.Tell(new QueryWeights(a.Kind, a.BaseVersion));
                return;
            }
            _fetcher = new WeightFetcher(a);
            _fetcher.Pump(_weightServer, Self);
        });
        Receive<WeightChunk>(c =>
        {
            if (_fetcher?.Accept(c, _weightServer, Self) is not { } blob) return;
            try { _apply(_fetcher.Announcement.Version, blob); }
            catch (Exception e)
            {
                _cannotApply = $"weights v{_fetcher.Announcement.Version} could not be applied: {e.Message}";
                Failures.Log(Context.GetLogger(), e, $"{Self.Path.Name}: weights v{_fetcher.Announcement.Version} could not be applied");
                (_fetcher, _afterBase) = (null, null);
                Become(Ready);
                Stash.UnstashAll();
                return;
            }
            RlftTelemetry.CompletedPhase(RlftTelemetry.Sync, _fetchStarted,
                new(RlftTelemetry.VersionTag, _fetcher.Announcement.Version), new(RlftTelemetry.KindTag, _fetcher.Announcement.Kind.ToString()),
                new("rlft.adapter_only", _fetcher.Announcement.AdapterOnly));
            _fetcher = null;
            if (_afterBase is { } next)
            {
                _afterBase = null;
                _fetcher = new WeightFetcher(next);
                _fetcher.Pump(_weightServer, Self);
                return;
            }
            Become(Ready);
            Stash.UnstashAll();
        });
        Receive<WeightsUnavailable>(_ =>
        {
            _afterBase = null; // the base (or the version) is gone: start again from the current version
            AskAgainSoon();
        });
        ReceiveAny(_ => Stash.Stash());
    }

    void AskAgainSoon() =>
        Context.System.Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(200), _coordinator, new QueryWeights(_kind), Self);
}
