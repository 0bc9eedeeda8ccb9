using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Rlft.Policy.Collectives;

/// <summary>
/// A group over TCP: one connection per pair of members (the higher rank dials the lower, then says its rank in a
/// 4-byte hello), frames as an 8-byte little-endian length and the payload. This is the bulk channel beside the
/// cluster's Akka connection: tensors never travel through actor messages, so a large gradient cannot block
/// heartbeats (see PLATFORM.md on Akka frame sizes).
/// </summary>
internal sealed class TcpTransport : ICollectiveTransport
{
    const int SocketBuffer = 4 << 20;
    readonly TcpClient?[] _clients;
    readonly NetworkStream?[] _streams;
    readonly SemaphoreSlim[] _sending, _receiving;

    TcpTransport(int rank, TcpClient?[] clients)
    {
        Rank = rank;
        _clients = clients;
        _streams = clients.Select(c => c?.GetStream()).ToArray();
        _sending = clients.Select(_ => new SemaphoreSlim(1, 1)).ToArray();
        _receiving = clients.Select(_ => new SemaphoreSlim(1, 1)).ToArray();
    }

    public int Rank { get; }
    public int Size => _clients.Length;

    /// <summary>
    /// Joins the group as <paramref name="rank"/>: accepts the higher ranks on <paramref name="listener"/> (already
    /// started on <c>endpoints[rank]</c>) and dials the lower ranks at their endpoints, retrying until
    /// <paramref name="timeout"/> while a peer is not listening yet.
    /// </summary>
    public static async Task<TcpTransport> ConnectAsync(int rank, IReadOnlyList<IPEndPoint> endpoints, TcpListener listener, TimeSpan timeout, CancellationToken ct = default)
    {
        int size = endpoints.Count;
        if (rank < 0 || rank >= size) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is outside a group of {size}");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var clients = new TcpClient?[size];
        try
        {
            var accepting = AcceptHigherAsync(rank, size, listener, clients, deadline.Token);
            for (int peer = 0; peer < rank; peer++) clients[peer] = await DialAsync(rank, endpoints[peer], deadline.Token);
            await accepting;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            foreach (var c in clients) c?.Dispose();
            var missing = Enumerable.Range(0, size).Where(p => p != rank && clients[p] is null);
            throw new TimeoutException($"member {rank} of a group of {size}: no connection from member(s) {string.Join(", ", missing)} within {timeout.TotalSeconds:0.#} s");
        }
        return new TcpTransport(rank, clients);
    }

    /// <summary>A whole group of <paramref name="size"/> in this process over loopback TCP (port 0 each): for tests and the bench.</summary>
    public static async Task<TcpTransport[]> LoopbackGroupAsync(int size, TimeSpan timeout)
    {
        var listeners = Enumerable.Range(0, size).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            var endpoints = listeners.Select(l => (IPEndPoint)l.LocalEndpoint).ToList();
            return await Task.WhenAll(Enumerable.Range(0, size).Select(r => ConnectAsync(r, endpoints, listeners[r], timeout)));
        }
        finally { listeners.ForEach(l => l.Stop()); }
    }

    static async Task AcceptHigherAsync(int rank, int size, TcpListener listener, TcpClient?[] clients, CancellationToken ct)
    {
        for (int accepted = 0; accepted < size - 1 - rank; accepted++)
        {
            var client = await listener.AcceptTcpClientAsync(ct);
            Tune(client);
            var hello = new byte[4];
            await client.GetStream().ReadExactlyAsync(hello, ct);
            int peer = BinaryPrimitives.ReadInt32LittleEndian(hello);
            if (peer <= rank || peer >= size || clients[peer] is not null)
            {
                client.Dispose();
                throw new InvalidDataException($"member {rank}: a connection introduced itself as member {peer}, which is not an expected higher rank of a group of {size}");
            }
            clients[peer] = client;
        }
    }

    static async Task<TcpClient> DialAsync(int rank, IPEndPoint peer, CancellationToken ct)
    {
        while (true)
        {
            var client = new TcpClient(peer.AddressFamily);
            try
            {
                await client.ConnectAsync(peer, ct);
                Tune(client);
                var hello = new byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(hello, rank);
                await client.GetStream().WriteAsync(hello, ct);
                return client;
            }
            catch (SocketException)
            {
                client.Dispose();
                await Task.Delay(50, ct);   // the peer is not listening yet
            }
        }
    }

    static void Tune(TcpClient client)
    {
        client.NoDelay = true;
        client.SendBufferSize = SocketBuffer;
        client.ReceiveBufferSize = SocketBuffer;
    }

    public async Task SendAsync(int peer, ReadOnlyMemory<byte> frame, CancellationToken ct = default)
    {
        var stream = Stream(peer);
        await _sending[peer].WaitAsync(ct);
        try
        {
            var header = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(header, frame.Length);
            await stream.WriteAsync(header, ct);
            await stream.WriteAsync(frame, ct);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { throw Lost(peer, e); }
        finally { _sending[peer].Release(); }
    }

    public async Task<int> ReceiveAsync(int peer, Memory<byte> into, CancellationToken ct = default)
    {
        var stream = Stream(peer);
        await _receiving[peer].WaitAsync(ct);
        try
        {
            var header = new byte[8];
            await stream.ReadExactlyAsync(header, ct);
            long length = BinaryPrimitives.ReadInt64LittleEndian(header);
            if (length < 0 || length > Array.MaxLength) throw new InvalidDataException($"member {Rank}: a frame from member {peer} claims {length} bytes");
            if (length == into.Length) await stream.ReadExactlyAsync(into, ct);
            else await stream.ReadExactlyAsync(new byte[length], ct);   // consumed so the stream stays framed; the caller refuses it
            return (int)length;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { throw Lost(peer, e); }
        finally { _receiving[peer].Release(); }
    }

    /// <summary>A link that closed (the peer's process ended, or the group was stopped), named for the job's message.</summary>
    IOException Lost(int peer, Exception e) =>
        new($"member {Rank} of a group of {Size}: the link to member {peer} was lost ({(e is EndOfStreamException ? "the peer closed it" : e.Message)})", e);

    NetworkStream Stream(int peer) => peer >= 0 && peer < Size && _streams[peer] is { } s
        ? s
        : throw new ArgumentOutOfRangeException(nameof(peer), $"member {Rank} of a group of {Size} has no peer {peer}");

    public void Dispose()
    {
        foreach (var c in _clients) c?.Dispose();
    }
}
