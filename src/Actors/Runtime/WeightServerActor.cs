using Akka.Actor;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Training;

namespace Rlft.Actors.Runtime;

/// <summary>Local hand-off from the learner: a new version to serve as these bytes (never crosses the wire).</summary>
internal sealed record ServeBlob(WeightBlob Blob) : INoSerializationVerificationNeeded;

/// <summary>
/// Local hand-off from the learner: a new version is on the node's <see cref="LocalWeightShelf"/>. Replicas of this
/// process take it from there; bytes are packed from it only when a remote replica asks.
/// </summary>
internal sealed record ServeShelved(WeightKind Kind, long Version, bool AdapterOnly, long BaseVersion) : INoSerializationVerificationNeeded;

/// <summary>
/// Serves the latest weight versions. A replica in the learner's process that accepts shelved tensors is pointed at
/// the shelf (<see cref="LocalWeightsReady"/>): no bytes exist for it. Other replicas get an announcement naming the
/// node's bulk channel (<see cref="WeightStreamServer"/>, when the node has one) and stream the bytes from there, or
/// fetch them here in chunks (no channel, or it cannot be reached); a shelved version is
/// packed into bytes on first demand, off this actor's thread, and kept while the version is served. It keeps the
/// current and the previous version of each kind (a worker mid-fetch can finish the version it started), and the latest
/// full version, which adapter-only versions apply on (a late joiner fetches it first).
/// </summary>
internal sealed class WeightServerActor : ReceiveActor
{
    readonly Dictionary<WeightKind, List<Served>> _served = new();
    readonly Dictionary<WeightKind, Served> _lastFull = new();
    readonly LocalWeightShelf _shelf;
    readonly WeightStreamServer? _stream;
    readonly bool _syncBf16;
    // What the bulk channel may stream, read from its connection tasks: replaced (never changed) by this actor.
    volatile Served[] _streamable = [];

    /// <param name="stream">The node's bulk channel, owned (stopped with) this actor; null: chunks only.</param>
    /// <param name="syncBf16">Remote replicas get floating-point tensors as bf16, widened to fp32 on arrival (<c>sync-dtype = bf16</c>).</param>
    public static Props Props(WeightStreamServer? stream = null, bool syncBf16 = false) => Akka.Actor.Props.Create(() => new WeightServerActor(stream, syncBf16));

    /// <summary>One served version: what it is, and its bytes once a remote replica has asked for them.</summary>
    sealed class Served(WeightKind kind, long version, bool adapterOnly, long baseVersion, bool shelved, Func<WeightBlob>? pack, WeightBlob? blob = null)
    {
        public WeightKind Kind => kind;
        public long Version => version;
        public bool AdapterOnly => adapterOnly;
        public long BaseVersion => baseVersion;
        public bool Shelved => shelved;
        // Thread-safe: asked for by this actor and by the bulk channel's connections.
        readonly Lazy<Task<WeightBlob>> _bytes = new(() => blob is not null ? Task.FromResult(blob) : Task.Run(pack!));
        public Task<WeightBlob> Bytes => _bytes.Value;
    }

    public WeightServerActor(WeightStreamServer? stream, bool syncBf16)
    {
        _syncBf16 = syncBf16;
        _shelf = LocalWeightShelf.For(Context.System);
        _stream = stream;
        stream?.Serve((kind, version) => _streamable.LastOrDefault(s => s.Kind == kind && s.Version == version)?.Bytes);
        Receive<ServeBlob>(m => Add(new Served(m.Blob.Kind, m.Blob.Version, m.Blob.AdapterOnly, m.Blob.Announcement.BaseVersion, shelved: false,
            _syncBf16 ? () => Narrowed(m.Blob) : null, _syncBf16 ? null : m.Blob)));
        Receive<ServeShelved>(m => Add(new Served(m.Kind, m.Version, m.AdapterOnly, m.BaseVersion, shelved: true, () => Pack(m))));
        Receive<QueryWeights>(m =>
        {
            var served = m.Version < 0 ? Current(m.Kind) : Find(m.Kind, m.Version, full: true);
            if (served is null) { Sender.Tell(Unavailable(m.Kind, m.Version)); return; }
            if (m.AcceptsLocal && served.Shelved && Sender.Path.Address.HasLocalScope && _shelf.Has(served.Kind, served.Version))
            {
                Sender.Tell(new LocalWeightsReady(served.Kind, served.Version, served.AdapterOnly, served.BaseVersion));
                return;
            }
            Reply(served, Sender, Announce);
        });
        Receive<FetchChunk>(m =>
        {
            var served = Find(m.Kind, m.Version, full: false);
            if (served is null) Sender.Tell(Unavailable(m.Kind, m.Version));
            else Reply(served, Sender, blob => m.Index >= 0 && m.Index < blob.Announcement.ChunkCount ? blob.Chunk(m.Index) : Unavailable(m.Kind, m.Version));
        });
    }

    void Add(Served served)
    {
        var list = _served.TryGetValue(served.Kind, out var l) ? l : _served[served.Kind] = new List<Served>();
        list.RemoveAll(s => s.Version == served.Version);   // re-served (a live base re-shelved once adapters attach)
        list.Add(served);
        list.Sort((a, b) => a.Version.CompareTo(b.Version));   // a base re-served under newer adapters is not the current version
        if (list.Count > 2) list.RemoveAt(0);
        if (!served.AdapterOnly) _lastFull[served.Kind] = served;
        _streamable = _served.Values.SelectMany(l => l).Concat(_lastFull.Values).Distinct().ToArray();
    }

    /// <summary>A version's announcement, naming the bulk channel when the node has one.</summary>
    WeightsPublished Announce(WeightBlob blob) =>
        _stream is null ? blob.Announcement : blob.Announcement with { StreamHost = _stream.Host, StreamPort = _stream.Port };

    protected override void PostStop() => _stream?.Dispose();

    // A restarted instance takes the same bulk channel (its Props hold it): only a stop closes it.
    protected override void PreRestart(Exception reason, object message) { }

    /// <summary>The bytes of a shelved version, packed from the shelf's tensors (on a pool thread).</summary>
    WeightBlob Pack(ServeShelved m)
    {
        using var lease = _shelf.Acquire(m.Kind, m.Version) ?? throw new InvalidOperationException($"weights v{m.Version} are no longer shelved");
        var bytes = lease.Weights.Pack();
        return new WeightBlob(m.Kind, m.Version, _syncBf16 ? ModelBlob.ToBf16(bytes) : bytes, m.AdapterOnly, baseVersion: m.AdapterOnly ? m.BaseVersion : -1);
    }

    /// <summary>A version's bytes with its floating-point tensors as bf16 (rlft.job.weight-sync.sync-dtype = bf16): half the bytes on the wire.</summary>
    static WeightBlob Narrowed(WeightBlob blob) =>
        new(blob.Kind, blob.Version, ModelBlob.ToBf16(blob.Data), blob.AdapterOnly, blob.ChunkSize, blob.Announcement.BaseVersion);

    /// <summary>Answers from the version's bytes: at once when they exist, else when they are packed (or that they cannot be).</summary>
    void Reply(Served served, IActorRef to, Func<WeightBlob, object> answer)
    {
        var bytes = served.Bytes;
        var unavailable = Unavailable(served.Kind, served.Version);
        var self = Self;   // the fetcher asks this actor for the chunks: replies name it as their sender
        if (bytes.IsCompletedSuccessfully) to.Tell(answer(bytes.Result), self);
        else bytes.ContinueWith(t => to.Tell(t.IsCompletedSuccessfully ? answer(t.Result) : unavailable, self), TaskScheduler.Default);
    }

    WeightsUnavailable Unavailable(WeightKind kind, long version) => new(kind, version, Current(kind)?.Version ?? -1);

    Served? Current(WeightKind kind) => _served.GetValueOrDefault(kind)?.LastOrDefault();

    /// <summary>A served version (recent, or the last full one); with <paramref name="full"/>, only full weights (a base).</summary>
    Served? Find(WeightKind kind, long version, bool full) =>
        (_served.GetValueOrDefault(kind) ?? []).Append(_lastFull.GetValueOrDefault(kind))
            .LastOrDefault(b => b is not null && b.Version == version && !(full && b.AdapterOnly));
}
