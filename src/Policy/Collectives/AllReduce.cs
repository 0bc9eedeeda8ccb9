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
/// Frames go straight from and into the flattened tensor's memory; a list of one contiguous CPU tensor is reduced in place.
/// A sum that fails (a member lost, a frame refused) closes the transport, whose members are then out of step.
/// </summary>
internal static class AllReduce
{
    /// <summary>The largest piece reduced in one round pair (frames stay well under 2 GiB).</summary>
    const long SegmentBytes = 1L << 30;

    /// <summary>Replaces every tensor by its sum over the group. All members pass the same shapes and dtypes in the same order.</summary>
    public static async Task SumAsync(ICollectiveTransport transport, IReadOnlyList<Tensor> tensors, CancellationToken ct = default)
    {
        if (transport.Size == 1 || tensors.Count == 0) return;
        foreach (var dtype in tensors.Select(t => t.dtype).Distinct().ToList())
        {
            var group = tensors.Where(t => t.dtype == dtype).ToList();
            // No dispose scope here: a scope is per thread, and the awaits below resume on other threads (a scope
            // disposed on another thread than its own corrupts both threads' scope stacks). Tensors are disposed by hand.
            bool inPlace = group.Count == 1 && group[0].device_type == DeviceType.CPU && group[0].is_contiguous();
            using var flat = inPlace ? group[0].detach().view(-1) : cat(group.Select(t => t.detach().reshape(-1).cpu()).ToList(), 0).contiguous();   // (L)
            long step = Math.Max(1, SegmentBytes / flat.element_size());
            for (long start = 0; start < flat.numel(); start += step)
            {
                using var segment = flat.narrow(0, start, Math.Min(step, flat.numel() - start));
                await SumFlatAsync(transport, segment, ct);
            }
            if (inPlace) continue;
            long offset = 0;
            using var _ = no_grad();
            foreach (var t in group)
            {
                using var slice = flat.narrow(0, offset, t.numel());
                using var shaped = slice.view(t.shape);
                t.copy_(shaped);
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

    /// <summary>Reduce-scatter then all-gather of a contiguous 1-D CPU tensor, in place.</summary>
    static async Task SumFlatAsync(ICollectiveTransport transport, Tensor flat, CancellationToken ct)
    {
        int rank = transport.Rank, size = transport.Size;
        long elements = flat.numel();
        int elementSize = (int)flat.element_size();
        (long Start, long Count) Chunk(int k) => (k * elements / size, (k + 1) * elements / size - k * elements / size);
        var memory = new TensorMemory(flat).Memory;
        Memory<byte> Bytes((long Start, long Count) c) => memory.Slice((int)(c.Start * elementSize), (int)(c.Count * elementSize));
        var peers = Enumerable.Range(0, size).Where(p => p != rank).ToList();
        var mine = Chunk(rank);
        using var own = flat.narrow(0, mine.Start, mine.Count);                          // (n) my chunk, summed here

        // 1. Reduce-scatter: every peer's copy of my chunk comes to me; I add them up in rank order.
        using var parts = empty([size, mine.Count], dtype: flat.dtype);                   // (N, n) the peers' copies
        var partsMemory = new TensorMemory(parts).Memory;
        int partBytes = (int)(mine.Count * elementSize);
        await Round(transport,
            peers.Select(p => transport.SendAsync(p, Bytes(Chunk(p)), ct)).ToList(),
            peers.Select(p => ReceiveExactly(transport, p, partsMemory.Slice(p * partBytes, partBytes), "its share of my chunk", ct)).ToList());
        using (var scope = NewDisposeScope())
        {
            Tensor Part(int r) => r == rank ? own : parts[r];
            if (rank == 0) for (int r = 1; r < size; r++) own.add_(Part(r));
            else
            {
                var acc = parts[0].clone();
                for (int r = 1; r < size; r++) acc.add_(Part(r));
                own.copy_(acc);
            }
        }

        // 2. All-gather: my summed chunk goes to every peer; theirs land in place.
        await Round(transport,
            peers.Select(p => transport.SendAsync(p, Bytes(mine), ct)).ToList(),
            peers.Select(p => ReceiveExactly(transport, p, Bytes(Chunk(p)), "its summed chunk", ct)).ToList());
    }

    /// <summary>
    /// Waits for one round's sends and receives, which read and write the caller's tensors in place. When one fails (a
    /// peer lost, a frame refused), the members are out of step and the transport is no longer usable: it is closed, so
    /// that the others end at once, and all of them have ended before the failure is thrown — a send still reading, or a
    /// receive still writing, a tensor its caller frees on the way out would touch freed memory.
    /// </summary>
    static async Task Round(ICollectiveTransport transport, List<Task> sends, List<Task> receives)
    {
        var pending = sends.Concat(receives).ToList();
        Task? failed = null;
        while (pending.Count > 0 && failed is null)
        {
            var done = await Task.WhenAny(pending);
            pending.Remove(done);
            if (!done.IsCompletedSuccessfully) failed = done;
        }
        if (failed is null) return;
        transport.Dispose();
        try { await Task.WhenAll(pending); }
        catch (Exception) { }   // the operations the close ended; the first failure is the one reported
        await failed;
    }

    static async Task ReceiveExactly(ICollectiveTransport transport, int peer, Memory<byte> into, string what, CancellationToken ct)
    {
        int length = await transport.ReceiveAsync(peer, into, ct);
        if (length != into.Length)
            throw new InvalidDataException($"member {transport.Rank}: member {peer} sent {length} bytes as {what}, expected {into.Length}: the members reduce tensors of different shapes or dtypes");
    }
}
