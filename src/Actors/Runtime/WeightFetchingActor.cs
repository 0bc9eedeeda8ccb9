using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Protocol;
using Rlft.Actors.Telemetry;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Base of the actors that hold a replica (rollout, reward): while a newer weight version is fetched,
/// work is stashed; once the bytes have arrived intact the weights are applied and the work replayed.
/// Queries go through the coordinator, which forwards them to the weight server. When the announcement names the
/// server node's bulk channel the bytes are streamed from it by a task whose result is piped back here (damaged or
/// short streams are fetched again); otherwise, or when the channel cannot be reached, chunk requests go to the
/// server directly. An adapter-only version on a base the replica does not hold (a late joiner,
/// or a missed stage start) is preceded by a fetch of that base. A replica in the learner's own process that can take
/// shelved tensors (<see cref="LocalWeightShelf"/>) asks for them and is pointed at the shelf: no bytes at all.
/// </summary>
internal abstract class WeightFetchingActor : ReceiveActor, IWithStash
{
    readonly IActorRef _coordinator;
    WeightFetcher? _fetcher;
    WeightsPublished? _streaming;   // the version being streamed (its result comes back as WeightsStreamed)
    IActorRef _weightServer = ActorRefs.Nobody;
    WeightKind _kind;
    long _wanted;
    Action<long, byte[]> _apply = (_, _) => { };
    Action<long, LocalWeights>? _applyLocal;
    // An adapter-only version waiting while its base is fetched (its announcement, or the shelf's).
    WeightsPublished? _afterBase;
    LocalWeightsReady? _afterLocalBase;

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
    /// <param name="applyLocal">Takes a version from the node's shelf (null: this replica takes bytes only).</param>
    protected void FetchThenRetry(WeightKind kind, long version, Action<long, byte[]> apply, Action<string> failed, Action<long, LocalWeights>? applyLocal = null)
    {
        if (_cannotApply is { } reason) { failed(reason); return; }
        Stash.Stash();
        (_kind, _wanted, _apply, _applyLocal, _fetchStarted) = (kind, version, apply, applyLocal, DateTimeOffset.UtcNow);
        _coordinator.Tell(Query(kind));
        Become(Fetching);
    }

    QueryWeights Query(WeightKind kind, long version = -1) => new(kind, version, AcceptsLocal: _applyLocal is not null);

    /// <summary>Applies a shelved version (leased while it is read); false when the shelf no longer holds it.</summary>
    bool ApplyShelved(LocalWeightsReady ready)
    {
        using var lease = LocalWeightShelf.For(Context.System).Acquire(ready.Kind, ready.Version);
        if (lease is null) return false;
        _applyLocal!(ready.Version, lease.Weights);
        return true;
    }

    /// <summary>A version could not be applied: every later request is answered with the reason.</summary>
    void CannotApply(long version, Exception e)
    {
        _cannotApply = $"weights v{version} could not be applied: {e.Message}";
        Failures.Log(Context.GetLogger(), e, $"{Self.Path.Name}: weights v{version} could not be applied");
        (_fetcher, _streaming, _afterBase, _afterLocalBase) = (null, null, null, null);
        Become(Ready);
        Stash.UnstashAll();
    }

    void Fetched(long version, bool adapterOnly, bool local)
    {
        RlftTelemetry.CompletedPhase(RlftTelemetry.Sync, _fetchStarted,
            new(RlftTelemetry.VersionTag, version), new(RlftTelemetry.KindTag, _kind.ToString()),
            new("rlft.adapter_only", adapterOnly), new("rlft.local", local));
        Become(Ready);
        Stash.UnstashAll();
    }

    void Fetching()
    {
        Receive<LocalWeightsReady>(a =>
        {
            if (a.Kind != _kind || _applyLocal is null) return;
            if (_afterLocalBase is { } pending)
            {
                if (a.AdapterOnly || a.Version != pending.BaseVersion) return;
                _afterLocalBase = null;
                try
                {
                    if (!ApplyShelved(a) || !ApplyShelved(pending)) { AskAgainSoon(); return; }
                }
                catch (Exception e) { CannotApply(pending.Version, e); return; }
                Fetched(pending.Version, adapterOnly: true, local: true);
                return;
            }
            if (a.Version < _wanted) { AskAgainSoon(); return; }
            if (a.AdapterOnly && BaseVersion(a.Kind) != a.BaseVersion)
            {
                _afterLocalBase = a;
                Sender.Tell(Query(a.Kind, a.BaseVersion));
                return;
            }
            try
            {
                if (!ApplyShelved(a)) { AskAgainSoon(); return; }
            }
            catch (Exception e) { CannotApply(a.Version, e); return; }
            Fetched(a.Version, a.AdapterOnly, local: true);
        });
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
                _weightServer.Tell(Query(a.Kind, a.BaseVersion));
                return;
            }
            StartFetch(a);
        });
        Receive<WeightsStreamed>(r =>
        {
            if (r.Announcement != _streaming) return;   // a fetch since replaced by a newer announcement
            _streaming = null;
            if (r.Data is { } blob)
            {
                if (Completed(r.Announcement, blob)) WeightStreamClient.Recycle(blob);   // applied: its array serves the next version
                return;
            }
            Context.GetLogger().Warning("{0}: weights v{1} could not be streamed ({2}); fetching them in chunks", Self.Path.Name, r.Announcement.Version, r.Failure);
            FetchChunks(r.Announcement);
        });
        Receive<WeightChunk>(c =>
        {
            if (_fetcher?.Accept(c, _weightServer, Self) is { } blob) Completed(_fetcher.Announcement, blob);
        });
        Receive<WeightsUnavailable>(_ =>
        {
            (_afterBase, _afterLocalBase) = (null, null); // the base (or the version) is gone: start again from the current version
            AskAgainSoon();
        });
        ReceiveAny(_ => Stash.Stash());
    }

    /// <summary>Fetches an announced version: streamed off this actor's thread when the server's node has a bulk channel, else in chunks.</summary>
    void StartFetch(WeightsPublished a)
    {
        _fetcher = null;
        if (!a.Streamable) { FetchChunks(a); return; }
        _streaming = a;
        WeightStreamClient.FetchAsync(a).PipeTo(Self);
    }

    void FetchChunks(WeightsPublished a)
    {
        _fetcher = new WeightFetcher(a);
        _fetcher.Pump(_weightServer, Self);
    }

    /// <summary>
    /// A version's verified bytes arrived: applies them, then fetches the adapters waiting on this base, or resumes
    /// work. False when they could not be applied.
    /// </summary>
    bool Completed(WeightsPublished done, byte[] blob)
    {
        _fetcher = null;
        try { _apply(done.Version, blob); }
        catch (Exception e) { CannotApply(done.Version, e); return false; }
        if (_afterBase is { } next)
        {
            _afterBase = null;
            StartFetch(next);
            return true;
        }
        Fetched(done.Version, done.AdapterOnly, local: false);
        return true;
    }

    void AskAgainSoon() =>
        Context.System.Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(200), _coordinator, Query(_kind), Self);
}
