using FsCheck.Xunit;
using Rlft.Policy.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Collectives;

/// <summary>
/// The group all-reduce: every member ends with bitwise the sum one process computes locally in rank order,
/// ((x₀ + x₁) + x₂) + …, over random tensor lists, shapes, dtypes and group sizes, in process and over loopback TCP.
/// </summary>
public class AllReduceTests
{
    static readonly ScalarType[] Dtypes = [ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float64];

    /// <summary>Member <paramref name="rank"/>'s tensors: shapes and dtypes from <paramref name="seed"/>, values from seed and rank,
    /// spread over magnitudes so that a different summation order gives different bits.</summary>
    static List<Tensor> Inputs(int seed, int rank)
    {
        var shapes = new Random(seed);
        int count = 1 + shapes.Next(5);
        var values = new Random(seed * 31 + rank);
        var list = new List<Tensor>();
        for (int i = 0; i < count; i++)
        {
            long[] shape = Enumerable.Range(0, 1 + shapes.Next(3)).Select(_ => (long)shapes.Next(0, 7)).ToArray();
            var dtype = Dtypes[shapes.Next(Dtypes.Length)];
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var data = Enumerable.Range(0, (int)n).Select(_ => (values.NextDouble() - 0.5) * Math.Pow(10, values.Next(-3, 5))).ToArray();
            list.Add(tensor(data, dtype: ScalarType.Float64).reshape(shape).to(dtype));
        }
        return list;
    }

    static List<Tensor> FixedOrderSum(int seed, int size)
    {
        var sum = Inputs(seed, 0).Select(t => t.clone()).ToList();
        for (int r = 1; r < size; r++)
        {
            var next = Inputs(seed, r);
            for (int i = 0; i < sum.Count; i++) sum[i].add_(next[i]);
        }
        return sum;
    }

    static void AssertBitwise(List<Tensor> expected, List<Tensor> actual, string who)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].dtype, actual[i].dtype);
            Assert.Equal(expected[i].shape, actual[i].shape);
            Assert.True(expected[i].bytes.SequenceEqual(actual[i].bytes), $"{who}: tensor {i} ({expected[i].dtype}, [{string.Join(",", expected[i].shape)}]) differs from the fixed-order sum");
        }
    }

    [Property(MaxTest = 60)]
    public void Every_member_ends_with_the_fixed_order_sum_bitwise(int seed, byte sizeByte)
    {
        int size = 1 + sizeByte % 4;
        var results = GroupThreads.Run(size, group =>
        {
            var mine = Inputs(seed, group.Rank);
            group.Sum(mine);
            return mine;
        });
        var expected = FixedOrderSum(seed, size);
        for (int r = 0; r < size; r++) AssertBitwise(expected, results[r], $"member {r} of {size}");
    }

    [Fact]
    public void The_order_is_part_of_the_result_so_the_property_can_fail()
    {
        // The same inputs summed in reverse rank order give different bits for some seed: the property above is not vacuous.
        bool differs = Enumerable.Range(0, 20).Any(seed =>
        {
            var forward = FixedOrderSum(seed, 3);
            var backward = Inputs(seed, 2).Select(t => t.clone()).ToList();
            for (int r = 1; r >= 0; r--) { var next = Inputs(seed, r); for (int i = 0; i < backward.Count; i++) backward[i].add_(next[i]); }
            return Enumerable.Range(0, forward.Count).Any(i => !forward[i].bytes.SequenceEqual(backward[i].bytes));
        });
        Assert.True(differs);
    }

    [Fact]
    public void Scalars_sum_in_rank_order_and_shares_cover_the_batch_once()
    {
        var sums = GroupThreads.Run(3, group => group.Sum(group.Rank + 0.1, 1e16, group.Rank == 2 ? 1.0 : 0.0));
        foreach (var s in sums) Assert.Equal(new[] { (0.1 + 1.1) + 2.1, 3e16, 1.0 }, s);

        for (int size = 1; size <= 4; size++)
        {
            var shares = Enumerable.Range(0, size).Select(r => LearnerGroup.Share(24, 4, r, size)).ToList();
            Assert.Equal(Enumerable.Range(0, 24), shares.SelectMany(s => Enumerable.Range(s.Start, s.Count)));
            Assert.All(shares, s => Assert.Equal(0, s.Start % 4));
        }
        var error = Assert.Throws<ArgumentException>(() => LearnerGroup.Share(8, 4, 0, 3));
        Assert.Equal("a batch of 2 group(s) of 4 cannot give each of 3 learners a share", error.Message);
    }

    [Fact]
    public void Members_that_reduce_different_shapes_are_refused_with_a_message()
    {
        var error = Assert.Throws<AggregateException>(() => GroupThreads.Run(2, group =>
        {
            using var t = zeros(group.Rank == 0 ? 10 : 12);
            group.Sum([t]);
            return 0;
        }));
        Assert.Contains("the members reduce tensors of different shapes or dtypes", error.InnerException!.Message);
    }

    [Fact]
    public async Task Over_loopback_tcp_every_member_ends_with_the_fixed_order_sum_bitwise()
    {
        foreach (int size in new[] { 2, 3 })
        {
            var transports = await TcpTransport.LoopbackGroupAsync(size, TimeSpan.FromSeconds(30));
            try
            {
                foreach (int seed in new[] { 1, 2, 3 })
                {
                    var results = GroupThreads.Run(transports, t =>
                    {
                        var mine = Inputs(seed, t.Rank);
                        new LearnerGroup(t).Sum(mine);
                        return mine;
                    });
                    var expected = FixedOrderSum(seed, size);
                    for (int r = 0; r < size; r++) AssertBitwise(expected, results[r], $"tcp member {r} of {size}");
                }
                // A larger tensor (several MB, chunk boundaries inside it) survives the frames intact.
                var big = GroupThreads.Run(transports, t =>
                {
                    var x = full(3_000_001, t.Rank + 1.0f);
                    new LearnerGroup(t).Sum([x]);
                    return (x.min().item<float>(), x.max().item<float>());
                });
                float total = size * (size + 1) / 2f;
                Assert.All(big, mm => Assert.Equal((total, total), mm));
            }
            finally { foreach (var t in transports) t.Dispose(); }
        }
    }

    /// <summary>
    /// Member 0 of three: member 2's link fails at once, member 1's frames arrive but a send to it only ends when the
    /// transport is closed (a peer slow to read). Counts the sends and receives in flight.
    /// </summary>
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    sealed class OneLostTransport : ICollectiveTransport
    {
        readonly CancellationTokenSource _closed = new();
        int _inFlight;
        public int Rank => 0;
        public int Size => 3;
        public int InFlight => Volatile.Read(ref _inFlight);
        public bool Closed => _closed.IsCancellationRequested;

        public async Task SendAsync(int peer, ReadOnlyMemory<byte> frame, CancellationToken ct = default)
        {
            Interlocked.Increment(ref _inFlight);
            try { await Task.Delay(Timeout.Infinite, _closed.Token); }
            catch (OperationCanceledException) { throw new IOException($"the link to member {peer} was closed"); }
            finally { Interlocked.Decrement(ref _inFlight); }
        }

        public async Task<int> ReceiveAsync(int peer, Memory<byte> into, CancellationToken ct = default)
        {
            await Task.Yield();
            if (peer == 2) throw new IOException("member 2 was lost");
            into.Span.Clear();
            return into.Length;
        }

        public void Dispose() => _closed.Cancel();
    }

    [Fact]
    public async Task A_sum_that_loses_a_member_closes_the_links_and_ends_its_sends_before_it_throws()
    {
        var transport = new OneLostTransport();
        using var gradient = ones(1000);
        var error = await Assert.ThrowsAsync<IOException>(() => AllReduce.SumAsync(transport, [gradient], Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal("member 2 was lost", error.Message);
        // A send still in flight here would read the tensor's memory after the caller frees it.
        Assert.Equal(0, transport.InFlight);
        Assert.True(transport.Closed);
    }

    [Fact]
    public async Task Closing_an_in_process_member_ends_its_receive_in_flight()
    {
        var group = InProcessTransport.Create(2);
        var buffer = new byte[8];
        var receive = group[0].ReceiveAsync(1, buffer, Ct);
        group[0].Dispose();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receive.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        // The peer's frame, sent after the close, is never written into the buffer.
        await group[1].SendAsync(0, new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, Ct);
        Assert.All(buffer, b => Assert.Equal(0, b));
    }
}
