using System.Net;
using System.Net.Sockets;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;

namespace Rlft.Tests.Actors;

/// <summary>The weight stream over real loopback TCP: bytes, checksum, and what happens when the stream goes wrong.</summary>
public sealed class WeightStreamTests : IDisposable
{
    readonly WeightStreamServer _server = new("127.0.0.1");
    readonly WeightBlob _blob;

    public WeightStreamTests()
    {
        var data = new byte[3_000_001];   // odd-sized, several socket buffers' worth
        new Random(7).NextBytes(data);
        _blob = new WeightBlob(WeightKind.Policy, 4, data);
        _server.Serve((kind, version) => kind == WeightKind.Policy && version == 4 ? Task.FromResult(_blob) : null);
    }

    public void Dispose() => _server.Dispose();

    WeightsPublished Announcement => _blob.Announcement with { StreamHost = "127.0.0.1", StreamPort = _server.Port };

    [Fact]
    public async Task Three_concurrent_fetchers_get_the_blob_bit_for_bit()
    {
        var fetches = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => WeightStreamClient.FetchAsync(Announcement, ct: TestContext.Current.CancellationToken)));
        foreach (var f in fetches)
        {
            Assert.Null(f.Failure);
            Assert.Equal(1, f.Attempts);
            Assert.True(_blob.Data.AsSpan().SequenceEqual(f.Data));
        }
        // The server counts a stream once its last write returns, which may be just after the fetcher has read it.
        Assert.True(SpinWait.SpinUntil(() => _server.Completed == 3, 5000), $"{_server.Completed} streams completed");
    }

    [Fact]
    public async Task A_recycled_array_of_the_same_size_is_overwritten_whole_by_the_next_fetch()
    {
        var stale = new byte[_blob.Data.Length];
        Array.Fill(stale, (byte)0xff);
        WeightStreamClient.Recycle(stale);
        var f = await WeightStreamClient.FetchAsync(Announcement, ct: TestContext.Current.CancellationToken);
        Assert.True(_blob.Data.AsSpan().SequenceEqual(f.Data));
        WeightStreamClient.Recycle(f.Data!);
        var again = await WeightStreamClient.FetchAsync(Announcement, ct: TestContext.Current.CancellationToken);
        Assert.True(_blob.Data.AsSpan().SequenceEqual(again.Data));
    }

    [Theory]
    [InlineData(nameof(StreamFault.CorruptByte))]
    [InlineData(nameof(StreamFault.Truncate))]
    public async Task A_damaged_stream_is_detected_and_fetched_again(string faultName)
    {
        var fault = Enum.Parse<StreamFault>(faultName);
        _server.InjectFault(fault);
        var f = await WeightStreamClient.FetchAsync(Announcement, ct: TestContext.Current.CancellationToken);
        Assert.Null(f.Failure);
        Assert.Equal(2, f.Attempts);
        Assert.True(_blob.Data.AsSpan().SequenceEqual(f.Data));
        Assert.True(SpinWait.SpinUntil(() => _server.Completed == 1, 5000));
        Assert.Equal(2, _server.Connections);
    }

    [Fact]
    public async Task A_stream_damaged_on_every_attempt_gives_up_with_the_reason()
    {
        _server.InjectFault(StreamFault.CorruptByte, count: WeightStreamClient.DefaultAttempts);
        var f = await WeightStreamClient.FetchAsync(Announcement, ct: TestContext.Current.CancellationToken);
        Assert.Null(f.Data);
        Assert.Equal(WeightStreamClient.DefaultAttempts, f.Attempts);
        Assert.Contains("checksum", f.Failure);
    }

    [Fact]
    public async Task An_unreachable_port_ends_the_fetch_at_once()
    {
        // A port that was just free: nothing listens there.
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var f = await WeightStreamClient.FetchAsync(Announcement with { StreamPort = port }, ct: TestContext.Current.CancellationToken);
        Assert.Null(f.Data);
        Assert.Equal(1, f.Attempts);
        Assert.Contains("unreachable", f.Failure);
    }

    [Fact]
    public async Task A_version_no_longer_served_is_reported_without_retrying()
    {
        var f = await WeightStreamClient.FetchAsync(Announcement with { Version = 3 }, ct: TestContext.Current.CancellationToken);
        Assert.Null(f.Data);
        Assert.Equal(1, f.Attempts);
        Assert.Contains("no longer streamed", f.Failure);
    }
}
