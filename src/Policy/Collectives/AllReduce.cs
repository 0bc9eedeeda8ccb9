using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Collectives;

/// <summary>
/// All-reduce (sum) of a list of tensors over a group, exact and in a fixed order: every element's sum is
/// ((x₀ + x₁) + x₂) + … by rank, computed once by the member that owns that element's chunk and sent to the
/// others, so every member ends with bitwise the same tensors — the sum one process would compute locally.
/// The schedule is a direct reduce-scatter then all-gather over the full mesh: member k owns chunk k of the
/// flattened list (1/N of it); each member sends and receives (N−1)/N of the data twice, the bandwidth of a ring,
/// in two rounds instead of 2(N−1), and without a ring's rotating partial sums (whose order differs by chunk).
/// Tensors of different dtypes are reduced in their own dtype, one round pair per dtype in order of first use.
/// </summary>
public static class AllReduce
{
    /// <summary>Replaces every tensor by its sum over the group. All members pass the same shapes and dtypes in the same order.</summary>
    public static async Task SumAsync(ICollectiveTransport transport, IReadOnlyList<Tensor> tensors, CancellationToken ct = default)
    {
        if (transport.Size == 1 || tensors.Count == 0) return;
        foreach (var dtype in tensors.Select(t => t.dtype).Distinct().ToList())
        {
            var group = tensors.Where(t => t.dtype == dtype).ToList();
            using var scope = NewDisposeScope();
            var flat = cat(group.Select(t => t.detach().reshape(-1).cpu()).ToList(), 0).contiguous();   // (L)
            var bytes = await SumFlatAsync(transport, flat.bytes.ToArray(), (int)flat.element_size(), dtype, ct);
            flat.bytes = bytes;
            long offset = 0;
            using var _ = no_grad();
            foreach (var t in group)
            {
                t.copy_(flat.narrow(0, offset, t.numel()).view(t.shape));
                offset += t.numel();
            }
        }
    }

    /// <summary>Sums scalars over the group (fp64, rank order): the same array on every member.</summary>
    public static async Task<double[]> SumAsync(ICollectiveTransport transport, double[] values, CancellationToken ct = default)
    {
        if (transport.Size == 1) return (double[])values.Clone();
        using var t = tensor(values, dtype: ScalarType.Float64);
        await SumAsync(transport, [t], ct);
        return t.data<double>().ToArray();
    }

    /// <summary>Reduce-scatter then all-gather over a flat buffer of <paramref name="elementSize"/>-byte elements.</summary>
    static async Task<byte[]> SumFlatAsync(ICollectiveTransport transport, byte[] all, int elementSize, ScalarType dtype, CancellationToken ct)
    {
        int rank = transport.Rank, size = transport.Size;
        long elements = all.Length / elementSize;
        (int Offset, int Length) Chunk(int k)
        {
            long lo = k * elements / size, hi = (k + 1) * elements / size;
            return ((int)(lo * elementSize), (int)((hi - lo) * elementSize));
        }
        var peers = Enumerable.Range(0, size).Where(p => p != rank).ToList();

        // 1. Reduce-scatter: every peer's copy of my chunk comes to me; I add them up in rank order.
        var sends = peers.Select(p => { var (o, n) = Chunk(p); return transport.SendAsync(p, all.AsMemory(o, n), ct); }).ToList();
        var mine = Chunk(rank);
        var parts = new byte[size][];
        foreach (var p in peers) parts[p] = Expect(await transport.ReceiveAsync(p, ct), mine.Length, p, rank, "its share of my chunk");
        parts[rank] = all.AsSpan(mine.Offset, mine.Length).ToArray();
        await Task.WhenAll(sends);
        byte[] sum;
        using (var scope = NewDisposeScope())
        {
            long n = mine.Length / elementSize;
            var acc = FromBytes(parts[0], n, dtype);
            for (int r = 1; r < size; r++) acc.add_(FromBytes(parts[r], n, dtype));
            sum = acc.bytes.ToArray();
        }

        // 2. All-gather: my summed chunk goes to every peer; theirs fill in the rest.
        sends = peers.Select(p => transport.SendAsync(p, sum, ct)).ToList();
        sum.CopyTo(all, mine.Offset);
        foreach (var p in peers)
        {
            var (o, n) = Chunk(p);
            Expect(await transport.ReceiveAsync(p, ct), n, p, rank, "its summed chunk").CopyTo(all, o);
        }
        await Task.WhenAll(sends);
        return all;
    }

    static Tensor FromBytes(byte[] bytes, long elements, ScalarType dtype)
    {
        var t = empty(elements, dtype: dtype);
        t.bytes = bytes;
        return t;
    }

    static byte[] Expect(byte[] frame, int length, int peer, int rank, string what) => frame.Length == length
        ? frame
        : throw new InvalidDataException($"member {rank}: member {peer} sent {frame.Length} bytes as {what}, expected {length}: the members reduce tensors of different shapes or dtypes");
}
