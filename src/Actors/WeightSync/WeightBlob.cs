using System.Security.Cryptography;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.WeightSync;

/// <summary>
/// A published weight version split into chunks that fit the transport's frame size. Each chunk carries
/// the SHA-256 of its bytes; the announcement carries the digest of the whole blob.
/// </summary>
internal sealed class WeightBlob
{
    /// <summary>Default chunk size: well under the 4 MiB frame limit in hocon/akka.conf.</summary>
    public const int DefaultChunkSize = 1 << 20;

    readonly byte[] _data;
    readonly byte[][] _chunkDigests;

    public WeightKind Kind { get; }
    public long Version { get; }
    public int ChunkSize { get; }
    public bool AdapterOnly { get; }
    public WeightsPublished Announcement { get; }

    /// <param name="baseVersion">For an adapter-only blob, the full version its adapters apply on.</param>
    public WeightBlob(WeightKind kind, long version, byte[] data, bool adapterOnly = false, int chunkSize = DefaultChunkSize, long baseVersion = -1)
    {
        if (adapterOnly && baseVersion < 0) throw new ArgumentException("an adapter-only blob names the full version it applies on", nameof(baseVersion));
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize));
        (Kind, Version, _data, ChunkSize, AdapterOnly) = (kind, version, data, chunkSize, adapterOnly);
        int count = Math.Max(1, (data.Length + chunkSize - 1) / chunkSize);
        _chunkDigests = Enumerable.Range(0, count).Select(i => SHA256.HashData(Slice(i))).ToArray();
        Announcement = new WeightsPublished(kind, version, count, data.Length, Convert.ToHexString(SHA256.HashData(data)), adapterOnly, adapterOnly ? baseVersion : version);
    }

    ReadOnlySpan<byte> Slice(int index)
    {
        int start = index * ChunkSize;
        return _data.AsSpan(start, Math.Min(ChunkSize, _data.Length - start));
    }

    public WeightChunk Chunk(int index)
    {
        if (index < 0 || index >= _chunkDigests.Length) throw new ArgumentOutOfRangeException(nameof(index), $"chunk {index} of {_chunkDigests.Length}");
        return new WeightChunk(Kind, Version, index, _chunkDigests.Length, Slice(index).ToArray(), _chunkDigests[index]);
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
