using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Akka.Event;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.WeightSync;

/// <summary>
/// The bulk channel's wire format. A fetch is one connection: the fetcher sends a request (magic, kind, version);
/// the server answers with a header (magic, status, length) and, when the version is served, the blob's bytes in one
/// stream, then closes. No per-chunk round trips; the bytes are checked as a whole against the announced XxHash128.
/// </summary>
internal static class WeightStreamWire
{
    /// <summary>"RLWS", little-endian.</summary>
    public const uint Magic = 0x53574C52;
    /// <summary>magic u32, kind i32, version i64.</summary>
    public const int RequestBytes = 16;
    /// <summary>magic u32, status i32, length i64.</summary>
    public const int HeaderBytes = 16;
    public const int Served = 0, Unavailable = 1;
    /// <summary>Large kernel buffers: a 100 MB blob moves in few system calls.</summary>
    public const int SocketBuffer = 4 << 20;

    public static void Write(Span<byte> to, uint magic, int a, long b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(to, magic);
        BinaryPrimitives.WriteInt32LittleEndian(to[4..], a);
        BinaryPrimitives.WriteInt64LittleEndian(to[8..], b);
    }

    public static (uint Magic, int A, long B) Read(ReadOnlySpan<byte> from) =>
        (BinaryPrimitives.ReadUInt32LittleEndian(from), BinaryPrimitives.ReadInt32LittleEndian(from[4..]), BinaryPrimitives.ReadInt64LittleEndian(from[8..]));
}

/// <summary>How the test hook damages a stream (<see cref="WeightStreamServer.InjectFault"/>).</summary>
internal enum StreamFault { None, CorruptByte, Truncate }

/// <summary>
/// The weight server node's bulk channel: a TCP listener that streams served blobs to fetchers, one connection per
/// fetch, each on its own task (concurrent fetchers read the same immutable bytes). The weight server actor decides
/// what is served through the lookup it passes to <see cref="Serve"/>; this class only moves bytes.
/// </summary>
internal sealed class WeightStreamServer : IDisposable
{
    readonly TcpListener _listener;
    readonly CancellationTokenSource _stop = new();
    Func<WeightKind, long, Task<WeightBlob>?> _lookup = (_, _) => null;
    int _serving, _connections, _completed, _faults;
    StreamFault _fault;

    /// <summary>The host fetchers dial (the node's remote hostname) and the port listened on.</summary>
    public string Host { get; }
    public int Port { get; }
    /// <summary>Connections accepted, and streams sent whole.</summary>
    public int Connections => Volatile.Read(ref _connections);
    public int Completed => Volatile.Read(ref _completed);

    /// <summary>Listens on <paramref name="host"/>'s address (0.0.0.0 or a name that does not resolve: every address); port 0 picks a free one.</summary>
    public WeightStreamServer(string host, int port = 0)
    {
        _listener = new TcpListener(ListenAddress(host), port);
        _listener.Start();
        (Host, Port) = (host, ((IPEndPoint)_listener.LocalEndpoint).Port);
    }

    /// <summary>
    /// The learner node's weight stream (<c>rlft.job.weight-sync.stream-port</c>): null when off (-1), or when the port
    /// cannot be bound (said in the log): remote replicas then fetch chunks.
    /// </summary>
    public static WeightStreamServer? TryStart(string host, int port, ILoggingAdapter log)
    {
        if (port < 0) return null;
        try { return new WeightStreamServer(host, port); }
        catch (SocketException e)
        {
            log.Warning("rlft.job.weight-sync.stream-port: cannot listen on {0}:{1} ({2}); remote replicas fetch weights in chunks", host, port, e.Message);
            return null;
        }
    }

    static IPAddress ListenAddress(string host)
    {
        if (IPAddress.TryParse(host, out var ip)) return ip;
        if (host == "localhost") return IPAddress.Loopback;
        try { return Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? IPAddress.Any; }
        catch (SocketException) { return IPAddress.Any; }
    }

    /// <summary>Starts accepting fetches; <paramref name="lookup"/> gives the bytes of a served version (null: not served). Called from any thread.</summary>
    public void Serve(Func<WeightKind, long, Task<WeightBlob>?> lookup)
    {
        _lookup = lookup;
        if (_stop.IsCancellationRequested) return;   // stopped: fetchers find the port closed and fetch chunks
        if (Interlocked.Exchange(ref _serving, 1) == 0) _ = AcceptAsync(_stop.Token);
    }

    /// <summary>Test hook: the next <paramref name="count"/> streams are damaged (a flipped byte mid-blob, or closed halfway).</summary>
    internal void InjectFault(StreamFault fault, int count = 1)
    {
        lock (_stop) (_fault, _faults) = (fault, count);
    }

    StreamFault TakeFault()
    {
        lock (_stop)
        {
            if (_faults <= 0) return StreamFault.None;
            _faults--;
            return _fault;
        }
    }

    async Task AcceptAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(ct); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException) { return; }
            _ = Task.Run(() => SendAsync(socket, ct), CancellationToken.None);
        }
    }

    async Task SendAsync(Socket socket, CancellationToken ct)
    {
        Interlocked.Increment(ref _connections);
        using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            socket.NoDelay = true;
            socket.SendBufferSize = WeightStreamWire.SocketBuffer;
            var request = new byte[WeightStreamWire.RequestBytes];
            await stream.ReadExactlyAsync(request, ct);
            var (magic, kind, version) = WeightStreamWire.Read(request);
            if (magic != WeightStreamWire.Magic) return;
            WeightBlob? blob = null;
            try { blob = _lookup((WeightKind)kind, version) is { } bytes ? await bytes : null; }
            catch (Exception) { }   // packing failed: the version is not served
            var header = new byte[WeightStreamWire.HeaderBytes];
            WeightStreamWire.Write(header, WeightStreamWire.Magic, blob is null ? WeightStreamWire.Unavailable : WeightStreamWire.Served, blob?.Data.LongLength ?? 0);
            await stream.WriteAsync(header, ct);
            if (blob is null) return;
            var data = blob.Data;
            switch (TakeFault())
            {
                case StreamFault.CorruptByte:
                    int at = data.Length / 2;
                    await stream.WriteAsync(data.AsMemory(0, at), ct);
                    await stream.WriteAsync(new[] { (byte)(data[at] ^ 0x5a) }, ct);
                    await stream.WriteAsync(data.AsMemory(at + 1), ct);
                    return;
                case StreamFault.Truncate:
                    await stream.WriteAsync(data.AsMemory(0, data.Length / 2), ct);
                    return;
                default:
                    await stream.WriteAsync(data, ct);   // the blob's own array: no copy on this side
                    Interlocked.Increment(ref _completed);
                    socket.Shutdown(SocketShutdown.Send);
                    return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }   // the fetcher went away: it retries or falls back
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Stop();
    }
}
