using System.IO.Hashing;
using System.Security.Cryptography;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.WeightSync;

/// <summary>
/// A published weight version's bytes. A remote replica streams them whole from the node's bulk channel
/// (<see cref="WeightStreamServer"/>), verified with <see cref="Checksum"/>; or fetches them in chunks that fit the
/// transport's frame size, each carrying the SHA-256 of its bytes (computed on first demand: a streamed version
/// never pays for them), the announcement carrying the digest of the whole blob.
/// </summary>
internal sealed class WeightBlob
{
    /// <summary>Default chunk size: well under the 4 MiB frame limit in hocon/akka.conf.</summary>
    public const int DefaultChunkSize = 1 << 20;

    readonly byte[] _data;
    readonly Lazy<byte[][]> _chunkDigests;

    public WeightKind Kind { get; }
    public long Version { get; }
    public int ChunkSize { get; }
    public bool AdapterOnly { get; }
    /// <summary>The announcement without a stream endpoint (the weight server adds its own).</summary>
    public WeightsPublished Announcement { get; }
    /// <summary>The bytes themselves (never modified: streamed as they are).</summary>
    public byte[] Data => _data;
    /// <summary>XxHash128 of the bytes, in hex: what a streamed fetch is checked against.</summary>
    public string Checksum => Announcement.StreamChecksum!;

    /// <param name="baseVersion">For an adapter-only blob, the full version its adapters apply on.</param>
    public WeightBlob(WeightKind kind, long version, byte[] data, bool adapterOnly = false, int chunkSize = DefaultChunkSize, long baseVersion = -1)
    {
        if (adapterOnly && baseVersion < 0) throw new ArgumentException("an adapter-only blob names the full version it applies on", nameof(baseVersion));
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize));
        (Kind, Version, _data, ChunkSize, AdapterOnly) = (kind, version, data, chunkSize, adapterOnly);
        int count = Math.Max(1, (data.Length + chunkSize - 1) / chunkSize);
        _chunkDigests = new(() => Enumerable.Range(0, count).Select(i => SHA256.HashData(Slice(i))).ToArray());
        Announcement = new WeightsPublished(kind, version, count, data.Length, Convert.ToHexString(SHA256.HashData(data)), adapterOnly, adapterOnly ? baseVersion : version,
            StreamChecksum: StreamChecksumOf(data));
    }

    /// <summary>The streamed checksum of <paramref name="data"/>: XxHash128, in hex.</summary>
    public static string StreamChecksumOf(ReadOnlySpan<byte> data) => Convert.ToHexString(XxHash128.Hash(data));

    ReadOnlySpan<byte> Slice(int index)
    {
        int start = index * ChunkSize;
        return _data.AsSpan(start, Math.Min(ChunkSize, _data.Length - start));
    }

    public WeightChunk Chunk(int index)
    {
        var digests = _chunkDigests.Value;
        if (index < 0 || index >= digests.Length) throw new ArgumentOutOfRangeException(nameof(index), $"chunk {index} of {digests.Length}");
        return new WeightChunk(Kind, Version, index, digests.Length, Slice(index).ToArray(), digests[index]);
    }
}

/// <summary>
/// Reassembles a published version from chunks arriving in any order. A chunk whose digest does not
/// match its bytes is refused (the caller fetches it again); the whole blob is verified at the end.
/// </summary>
internal sealed class WeightAssembler
{
    readonly byte[]?[] _chunks;

    public WeightsPublished Announcement { get; }
    public int Received { get; private set; }
    public int Rejected { get; private set; }
    public bool IsComplete => Received == _chunks.Length;

    public WeightAssembler(WeightsPublished announcement)
    {
        Announcement = announcement;
        _chunks = new byte[announcement.ChunkCount][];
    }

    /// <summary>Indices still missing, in order.</summary>
    public IEnumerable<int> Missing => Enumerable.Range(0, _chunks.Length).Where(i => _chunks[i] is null);

    /// <summary>Stores a chunk; false (and counted) when it is corrupt or belongs elsewhere.</summary>
    public bool Accept(WeightChunk chunk)
    {
        if (chunk.Kind != Announcement.Kind || chunk.Version != Announcement.Version || chunk.Count != _chunks.Length
            || chunk.Index < 0 || chunk.Index >= _chunks.Length || !SHA256.HashData(chunk.Data).AsSpan().SequenceEqual(chunk.Sha256))
        {
            Rejected++;
            return false;
        }
        if (_chunks[chunk.Index] is null) Received++;
        _chunks[chunk.Index] = chunk.Data;
        return true;
    }

    /// <summary>The whole blob, verified against the announced length and digest.</summary>
    public byte[] Assemble()
    {
        if (!IsComplete) throw new InvalidOperationException($"weights v{Announcement.Version}: {Received}/{_chunks.Length} chunks received");
        var data = new byte[Announcement.TotalBytes];
        int offset = 0;
        foreach (var c in _chunks) { c!.CopyTo(data, offset); offset += c!.Length; }
        if (offset != Announcement.TotalBytes || Convert.ToHexString(SHA256.HashData(data)) != Announcement.Sha256)
            throw new InvalidDataException($"weights v{Announcement.Version}: assembled blob does not match its announced digest");
        return data;
    }
}
