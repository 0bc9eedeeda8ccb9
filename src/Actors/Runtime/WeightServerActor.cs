using Akka.Actor;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>Local hand-off from the learner: a new version to serve (never crosses the wire).</summary>
public sealed record ServeBlob(WeightBlob Blob) : INoSerializationVerificationNeeded;

/// <summary>
/// Serves the latest weight versions in chunks. It lives beside the learner on the default dispatcher,
/// so chunk requests are answered while the learner's thread is busy training. It keeps the current
/// and the previous version of each kind (a worker mid-fetch can finish the version it started), and the
/// latest full version, which adapter-only versions apply on (a late joiner fetches it first).
/// </summary>
public sealed class WeightServerActor : ReceiveActor
{
    readonly Dictionary<WeightKind, List<WeightBlob>> _blobs = new();
    readonly Dictionary<WeightKind, WeightBlob> _lastFull = new();

    public static Props Props() => Akka.Actor.Props.Create(() => new WeightServerActor());

    public WeightServerActor()
    {
        Receive<ServeBlob>(m =>
        {
            var list = _blobs.TryGetValue(m.Blob.Kind, out var l) ? l : _blobs[m.Blob.Kind] = new List<WeightBlob>();
            list.Add(m.Blob);
            if (list.Count > 2) list.RemoveAt(0);
            if (!m.Blob.AdapterOnly) _lastFull[m.Blob.Kind] = m.Blob;
        });
        Receive<QueryWeights>(m =>
        {
            var blob = m.Version < 0 ? Current(m.Kind) : Find(m.Kind, m.Version, full: true);
            if (blob is not null) Sender.Tell(blob.Announcement);
            else Sender.Tell(new WeightsUnavailable(m.Kind, m.Version, Current(m.Kind)?.Version ?? -1));
        });
        Receive<FetchChunk>(m =>
        {
            var blob = Find(m.Kind, m.Version, full: false);
            if (blob is null || m.Index < 0 || m.Index >= blob.Announcement.ChunkCount)
                Sender.Tell(new WeightsUnavailable(m.Kind, m.Version, Current(m.Kind)?.Version ?? -1));
            else
                Sender.Tell(blob.Chunk(m.Index));
        });
    }

    WeightBlob? Current(WeightKind kind) => _blobs.GetValueOrDefault(kind)?.LastOrDefault();

    /// <summary>A served blob of that version (recent, or the last full one); with <paramref name="full"/>, only full weights (a base).</summary>
    WeightBlob? Find(WeightKind kind, long version, bool full) =>
        (_blobs.GetValueOrDefault(kind) ?? []).Append(_lastFull.GetValueOrDefault(kind))
            .LastOrDefault(b => b is not null && b.Version == version && !(full && b.AdapterOnly));
}
