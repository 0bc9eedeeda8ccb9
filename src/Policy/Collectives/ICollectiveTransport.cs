using System.Threading.Channels;

namespace Rlft.Policy.Collectives;

/// <summary>
/// Point-to-point frames between the members of a group of <see cref="Size"/>, ranks 0…Size−1: what a collective
/// needs from the wire. Frames from one peer arrive whole and in the order they were sent. Sends and receives to
/// different peers may run concurrently; callers keep at most one send and one receive in flight per peer.
/// Disposing closes this member's links and ends its sends and receives in flight (they fail or are cancelled).
/// </summary>
internal interface ICollectiveTransport : IDisposable
{
    int Rank { get; }
    int Size { get; }
    /// <summary>Sends one frame to <paramref name="peer"/>; the buffer may be reused once the task completes.</summary>
    Task SendAsync(int peer, ReadOnlyMemory<byte> frame, CancellationToken ct = default);
    /// <summary>
    /// Receives the next frame from <paramref name="peer"/> into <paramref name="into"/> and returns its length; a frame of
    /// another length than <c>into.Length</c> is consumed, not copied, and its length returned (the caller refuses it).
    /// </summary>
    Task<int> ReceiveAsync(int peer, Memory<byte> into, CancellationToken ct = default);
}

/// <summary>
/// A group whose members live in one process (threads): one unbounded channel per ordered pair of members.
/// <see cref="Create"/> returns every member's end; a frame is copied on send, so senders may reuse their buffers.
/// </summary>
internal sealed class InProcessTransport : ICollectiveTransport
{
    readonly Channel<byte[]>[,] _links;   // [from, to]
    readonly CancellationTokenSource _closed = new();

    InProcessTransport(int rank, Channel<byte[]>[,] links) => (Rank, _links) = (rank, links);

    public int Rank { get; }
    public int Size => _links.GetLength(0);

    /// <summary>The <paramref name="size"/> members of a new in-process group, by rank.</summary>
    public static InProcessTransport[] Create(int size)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), $"a group has at least one member, not {size}");
        var links = new Channel<byte[]>[size, size];
        for (int a = 0; a < size; a++)
            for (int b = 0; b < size; b++)
                links[a, b] = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        return Enumerable.Range(0, size).Select(r => new InProcessTransport(r, links)).ToArray();
    }

    public async Task SendAsync(int peer, ReadOnlyMemory<byte> frame, CancellationToken ct = default)
    {
        var writer = _links[Rank, Check(peer)].Writer;
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(ct, _closed.Token);
        await writer.WriteAsync(frame.ToArray(), closed.Token);
    }

    public async Task<int> ReceiveAsync(int peer, Memory<byte> into, CancellationToken ct = default)
    {
        var reader = _links[Check(peer), Rank].Reader;
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(ct, _closed.Token);
        var frame = await reader.ReadAsync(closed.Token);
        if (frame.Length == into.Length) frame.CopyTo(into);
        return frame.Length;
    }

    int Check(int peer) => peer >= 0 && peer < Size && peer != Rank
        ? peer
        : throw new ArgumentOutOfRangeException(nameof(peer), $"member {Rank} of a group of {Size} has no peer {peer}");

    public void Dispose()
    {
        for (int p = 0; p < Size; p++) _links[Rank, p].Writer.TryComplete();
        _closed.Cancel();   // a receive waiting for a peer ends too (it would otherwise write into its buffer later)
    }
}
