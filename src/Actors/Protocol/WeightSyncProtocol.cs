namespace Rlft.Actors.Protocol;

/// <summary>Which weights a version refers to: the policy replica or the reward model.</summary>
internal enum WeightKind { Policy = 0, RewardModel = 1 }

/// <summary>
/// A published weight version: a small control message; the bytes move separately, as one stream from
/// <paramref name="StreamHost"/>:<paramref name="StreamPort"/> (the weight server node's bulk channel, verified
/// against <paramref name="StreamChecksum"/>, the XxHash128 of the blob in hex) or, where no stream is announced
/// (null host) or it cannot be reached, in chunks through the weight server actor. <see cref="Sha256"/> covers the
/// whole blob, each chunk carries its own digest. An <paramref name="AdapterOnly"/> version holds only LoRA adapter
/// tensors, to be applied on the full weights of <paramref name="BaseVersion"/> (for full weights, BaseVersion is
/// the version itself).
/// </summary>
internal sealed record WeightsPublished(WeightKind Kind, long Version, int ChunkCount, long TotalBytes, string Sha256, bool AdapterOnly, long BaseVersion,
    string? StreamHost = null, int StreamPort = 0, string? StreamChecksum = null) : IRlftMessage
{
    /// <summary>Whether the bytes can be fetched as one stream (else: chunks).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Streamable => StreamHost is not null && StreamPort > 0 && StreamChecksum is not null;
}

/// <summary>
/// Ask the weight server which version of <paramref name="Kind"/> is current, or, with
/// <paramref name="Version"/> ≥ 0, for the announcement of that version (a replica fetching an adapter
/// version's base). A replica on the learner's node that can take shelved tensors says so with
/// <paramref name="AcceptsLocal"/>: it is then answered with <see cref="LocalWeightsReady"/> instead of bytes.
/// </summary>
internal sealed record QueryWeights(WeightKind Kind, long Version = -1, bool AcceptsLocal = false) : IRlftMessage;

/// <summary>
/// The version is on this node's shelf (Rlft.Actors.WeightSync.LocalWeightShelf): take its tensors from there, no
/// bytes. Only ever sent to an actor of the learner's own process.
/// </summary>
internal sealed record LocalWeightsReady(WeightKind Kind, long Version, bool AdapterOnly, long BaseVersion) : IRlftMessage;

/// <summary>Ask the weight server for one chunk of a published version.</summary>
internal sealed record FetchChunk(WeightKind Kind, long Version, int Index) : IRlftMessage;

/// <summary>One chunk of a weight blob with the SHA-256 of its bytes.</summary>
internal sealed record WeightChunk(WeightKind Kind, long Version, int Index, int Count, byte[] Data, byte[] Sha256) : IRlftMessage;

/// <summary>The requested version is no longer (or not yet) served; ask for the current one.</summary>
internal sealed record WeightsUnavailable(WeightKind Kind, long Version, long CurrentVersion) : IRlftMessage;
