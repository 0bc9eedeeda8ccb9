using System.IO.Hashing;
using System.Net.Sockets;
using Akka.Actor;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.WeightSync;

/// <summary>
/// The outcome of a streamed fetch, piped back to the fetching actor: the verified bytes, or (null) why the stream
/// could not deliver them, in which case the actor fetches the version in chunks instead.
/// </summary>
internal sealed record WeightsStreamed(WeightsPublished Announcement, byte[]? Data, int Attempts, string? Failure) : INoSerializationVerificationNeeded;

/// <summary>A streamed fetch that went wrong; <see cref="Retry"/>: another connection may succeed (damaged or short bytes).</summary>
internal sealed class WeightStreamException(string message, bool retry) : Exception(message)
{
    public bool Retry => retry;
}

/// <summary>
/// The fetching side of the bulk channel (<see cref="WeightStreamServer"/>): one connection per attempt, the bytes
/// read straight into the result array and hashed (XxHash128) as they arrive. Bytes that arrive damaged or short are
/// fetched again; an unreachable port, or a version the server no longer streams, ends the attempts at once.
/// </summary>
internal static class WeightStreamClient
{
    public const int DefaultAttempts = 3;

    // The last applied blob's array, for the next fetch of the same size (a model's versions all are): its pages are
    // already mapped, while a new 100 MB array costs the kernel ~25k page faults and zeroing, as much as the copy
    // itself. Weak: the GC may take it back whenever memory is needed.
    static readonly WeakReference<byte[]?> Spare = new(null);

    /// <summary>Hands back the array of a fetch whose bytes have been applied and are no longer read.</summary>
    public static void Recycle(byte[] data)
    {
        lock (Spare) Spare.SetTarget(data);
    }

    static byte[] Allocate(int length)
    {
        lock (Spare)
        {
            if (Spare.TryGetTarget(out var spare) && spare is not null && spare.Length == length)
            {
                Spare.SetTarget(null);
                return spare;
            }
        }
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Fetches <paramref name="announcement"/>'s bytes (it must be <see cref="WeightsPublished.Streamable"/>); throws only when <paramref name="ct"/> is cancelled.</summary>
    public static async Task<WeightsStreamed> FetchAsync(WeightsPublished announcement, int attempts = DefaultAttempts, CancellationToken ct = default)
    {
        string failure = "no attempt";
        for (int attempt = 1; attempt <= attempts; attempt++)
        {
            // Generous: a 100 MB blob takes ~0.1 s on loopback, ~1 s on a 1 Gbit/s link.
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(30) + TimeSpan.FromSeconds(announcement.TotalBytes / 20e6));
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = WeightStreamWire.SocketBuffer };
            try
            {
                try { await socket.ConnectAsync(announcement.StreamHost!, announcement.StreamPort, deadline.Token); }
                catch (Exception e) when (e is SocketException or OperationCanceledException)
                {
                    return new(announcement, null, attempt, $"{announcement.StreamHost}:{announcement.StreamPort} unreachable: {e.Message}");
                }
                using var stream = new NetworkStream(socket, ownsSocket: true);
                return new(announcement, await ReceiveAsync(stream, announcement, deadline.Token), attempt, null);
            }
            catch (WeightStreamException e) when (!e.Retry) { return new(announcement, null, attempt, e.Message); }
            catch (Exception e) when (e is WeightStreamException or IOException or SocketException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                failure = e.Message;
            }
            finally { socket.Dispose(); }
        }
        return new(announcement, null, attempts, failure);
    }

    static async Task<byte[]> ReceiveAsync(NetworkStream stream, WeightsPublished a, CancellationToken ct)
    {
        var request = new byte[WeightStreamWire.RequestBytes];
        WeightStreamWire.Write(request, WeightStreamWire.Magic, (int)a.Kind, a.Version);
        await stream.WriteAsync(request, ct);

        var header = new byte[WeightStreamWire.HeaderBytes];
        await stream.ReadExactlyAsync(header, ct);
        var (magic, status, length) = WeightStreamWire.Read(header);
        if (magic != WeightStreamWire.Magic) throw new WeightStreamException($"weights v{a.Version}: not a weight stream", retry: false);
        if (status != WeightStreamWire.Served) throw new WeightStreamException($"weights v{a.Version}: no longer streamed", retry: false);
        if (length != a.TotalBytes) throw new WeightStreamException($"weights v{a.Version}: {length} bytes streamed, {a.TotalBytes} announced", retry: true);

        var data = Allocate(checked((int)length));
        var hash = new XxHash128();
        int offset = 0;
        while (offset < data.Length)
        {
            int n = await stream.ReadAsync(data.AsMemory(offset), ct);
            if (n == 0) throw new WeightStreamException($"weights v{a.Version}: stream closed after {offset} of {data.Length} bytes", retry: true);
            hash.Append(data.AsSpan(offset, n));   // while the kernel goes on receiving the next bytes
            offset += n;
        }
        if (!string.Equals(Convert.ToHexString(hash.GetCurrentHash()), a.StreamChecksum, StringComparison.OrdinalIgnoreCase))
            throw new WeightStreamException($"weights v{a.Version}: streamed bytes do not match the announced checksum", retry: true);
        return data;
    }
}
