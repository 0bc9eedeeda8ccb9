using Akka.Actor;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>Local hand-off from the learner: a new version to serve (never crosses the wire).</summary>
public sealed record ServeBlob(WeightBlob Blob) : INoSerializationVerificationNeeded;

/// <summary>
/// Serves the latest weight versions in chunks. It lives beside the learner on the default dispatcher,
/// so chunk requests are answered while the learner's thread is busy training. It keeps the current
/// and the previous version of each kind (a worker mid-fetch can finish the version it started).
/// </summary>
public sealed class WeightServerActor : ReceiveActor
{
    readonly Dictionary<WeightKind, List<WeightBlob>> _blobs = new();

    public static Props Props() => Akka.Actor.Props.Create(() => new WeightServerActor());

    public WeightServerActor()
    {
        Receive<ServeBlob>(m =>
        {
            var list = _blobs.TryGetValue(m.Blob.Kind, out var l) ? l : _blobs[m.Blob.Kind] = new List<WeightBlob>();
            list.Add(m.Blob);
            if (list.Count > 2) list.RemoveAt(0);
        });
        Receive<QueryWeights>(m =>
        {
            if (Current(m.Kind) is { } blob) Sender.Tell(blob.Announcement);
            else Sender.Tell(new WeightsUnavailable(m.Kind, -1, -1));
        });
        Receive<FetchChunk>(m =>
        {
            var blob = _blobs.GetValueOrDefault(m.Kind)?.FirstOrDefault(b => b.Version == m.Version);
            if (blob is null || m.Index < 0 || m.Index >= blob.Announcement.ChunkCount)
                Sender.Tell(new WeightsUnavailable(m.Kind, m.Version, Current(m.Kind)?.Version ?? -1));
            else
                Sender.Tell(blob.Chunk(m.Index));
        });
    }

    WeightBlob? Current(WeightKind kind) => _blobs.GetValueOrDefault(kind)?.LastOrDefault();
}
