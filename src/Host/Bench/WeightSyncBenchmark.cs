using System.Diagnostics;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using Rlft.Actors.Configuration;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Benchmarks;

namespace Rlft.Host.Bench;

/// <summary>
/// Weight-sync throughput over loopback TCP between two actor systems: the full fp32 weights of a
/// ~25M-parameter model (100 MB) fetched as a rollout node does, streamed from the server node's bulk channel
/// (one connection, XxHash128-checked) and, for comparison, in 1 MiB SHA-256-checked chunks through the weight
/// server actor (the fallback path); and the latency of an adapter-only version (LoRA rank 8 on the four
/// attention projections of the same model's 12 layers of width 512: 393k parameters, 1.6 MB), which is what
/// moves after each update with LoRA, by both paths.
/// </summary>
internal sealed class WeightSyncBenchmark : IBenchmark
{
    public string Name => "weight-sync";

    sealed class Fetch : ReceiveActor
    {
        public Fetch(IActorRef server, TaskCompletionSource<int> done)
        {
            WeightFetcher? fetcher = null;
            Receive<WeightsPublished>(a => { fetcher = new WeightFetcher(a); fetcher.Pump(server, Self); });
            Receive<WeightChunk>(c => { if (fetcher!.Accept(c, server, Self) is { } blob) done.TrySetResult(blob.Length); });
            server.Tell(new QueryWeights(WeightKind.Policy));
        }
    }

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        long parameters = options.Quick ? 2_500_000 : 25_000_000;
        var config = ConfigurationFactory.ParseString("akka.actor.provider = remote\nakka.loglevel = WARNING\n" + BenchAkkaLogger.Config)
            .WithFallback(RlftConfig.BaseAkka().Config);
        using var a = ActorSystem.Create("bench", config);
        using var b = ActorSystem.Create("bench", config);
        var blob = new byte[parameters * 4];
        new Random(1).NextBytes(blob);
        var server = a.ActorOf(WeightServerActor.Props(new WeightStreamServer("127.0.0.1")), "weights");
        var sw = Stopwatch.StartNew();
        server.Tell(new ServeBlob(new WeightBlob(WeightKind.Policy, 1, blob)));
        var address = ((ExtendedActorSystem)a).Provider.DefaultAddress;
        var remote = b.ActorSelection($"{address}/user/weights").ResolveOne(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        double prepare = sw.Elapsed.TotalSeconds;

        // Seconds per fetch of the current version by a fresh fetcher on the other system, over `runs` fetches.
        List<double> TimeFetches(int runs, int expectedBytes)
        {
            var seconds = new List<double>(runs);
            for (int run = 0; run < runs; run++)
            {
                var done = new TaskCompletionSource<int>();
                var clock = Stopwatch.StartNew();
                b.ActorOf(Props.Create(() => new Fetch(remote, done)));
                int bytes = done.Task.WaitAsync(TimeSpan.FromMinutes(5)).GetAwaiter().GetResult();
                if (bytes != expectedBytes) throw new InvalidOperationException($"fetched {bytes} of {expectedBytes} bytes");
                seconds.Add(clock.Elapsed.TotalSeconds);
            }
            seconds.Sort();
            return seconds;
        }

        // Seconds per streamed fetch: the announcement asked for over Akka, then the bytes from the bulk channel.
        List<double> TimeStreams(int runs, int expectedBytes)
        {
            var seconds = new List<double>(runs);
            for (int run = 0; run < runs; run++)
            {
                var clock = Stopwatch.StartNew();
                var announcement = remote.Ask<WeightsPublished>(new QueryWeights(WeightKind.Policy), TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
                var fetched = WeightStreamClient.FetchAsync(announcement).GetAwaiter().GetResult();
                if (fetched.Data?.Length != expectedBytes) throw new InvalidOperationException($"streamed {fetched.Data?.Length ?? 0} of {expectedBytes} bytes: {fetched.Failure}");
                seconds.Add(clock.Elapsed.TotalSeconds);
                WeightStreamClient.Recycle(fetched.Data);   // as a replica does once it has applied the bytes
            }
            seconds.Sort();
            return seconds;
        }

        double best = TimeFetches(options.Quick ? 1 : 3, blob.Length)[0];
        double bestStream = TimeStreams(options.Quick ? 2 : 5, blob.Length)[0];
        // The in-process reference: copying the same bytes once in memory, the speed a sync cannot beat.
        var copy = new byte[blob.Length];
        double copySeconds = BenchTiming.Best(3, () => Buffer.BlockCopy(blob, 0, copy, 0, blob.Length));
        yield return new JsonObject
        {
            ["name"] = "weight-sync/full-loopback",
            ["parameters"] = parameters,
            ["megabytes"] = Math.Round(blob.Length / 1e6, 1),
            ["chunk_bytes"] = WeightBlob.DefaultChunkSize,
            ["seconds"] = Math.Round(best, 3),
            ["megabytes_per_second"] = Math.Round(blob.Length / 1e6 / best, 1),
            ["publish_seconds"] = Math.Round(prepare, 3),
            ["memory_copy_megabytes_per_second"] = Math.Round(blob.Length / 1e6 / copySeconds, 0),
            ["error_log_lines"] = BenchAkkaLogger.Errors(a) + BenchAkkaLogger.Errors(b),
        }.WithRatio(copySeconds / best, "sync MB/s / in-process memory copy MB/s");

        // What verifying the whole blob would cost the fetcher, single-threaded: XxHash128 (done while the bytes arrive)
        // and SHA-256 (the chunk path's digest, not computed on the streamed path).
        double xxhashSeconds = BenchTiming.Best(3, () => System.IO.Hashing.XxHash128.Hash(blob));
        double sha256Seconds = BenchTiming.Best(2, () => System.Security.Cryptography.SHA256.HashData(blob));
        yield return new JsonObject
        {
            ["name"] = "weight-sync/full-stream",
            ["parameters"] = parameters,
            ["megabytes"] = Math.Round(blob.Length / 1e6, 1),
            ["seconds"] = Math.Round(bestStream, 3),
            ["megabytes_per_second"] = Math.Round(blob.Length / 1e6 / bestStream, 1),
            ["chunked_megabytes_per_second"] = Math.Round(blob.Length / 1e6 / best, 1),
            ["memory_copy_megabytes_per_second"] = Math.Round(blob.Length / 1e6 / copySeconds, 0),
            ["xxhash128_megabytes_per_second"] = Math.Round(blob.Length / 1e6 / xxhashSeconds, 0),
            ["sha256_megabytes_per_second"] = Math.Round(blob.Length / 1e6 / sha256Seconds, 0),
            ["error_log_lines"] = BenchAkkaLogger.Errors(a) + BenchAkkaLogger.Errors(b),
        }.WithRatio(copySeconds / bestStream, "streamed sync MB/s / in-process memory copy MB/s");

        long adapterParameters = 12L * 4 * 8 * (512 + 512);
        var adapterBlob = new byte[adapterParameters * 4];
        new Random(2).NextBytes(adapterBlob);
        server.Tell(new ServeBlob(new WeightBlob(WeightKind.Policy, 2, adapterBlob, adapterOnly: true, baseVersion: 1)));
        var latencies = TimeFetches(options.Quick ? 5 : 30, adapterBlob.Length).Select(t => t * 1000).ToList();
        yield return new JsonObject
        {
            ["name"] = "weight-sync/adapter-loopback",
            ["parameters"] = adapterParameters,
            ["megabytes"] = Math.Round(adapterBlob.Length / 1e6, 2),
            ["p50_ms"] = Math.Round(latencies[latencies.Count / 2], 1),
            ["p90_ms"] = Math.Round(latencies[(int)(latencies.Count * 0.9)], 1),
            ["full_sync_ms"] = Math.Round(best * 1000, 1),
            ["error_log_lines"] = BenchAkkaLogger.Errors(a) + BenchAkkaLogger.Errors(b),
        }.WithRatio(latencies[(int)(latencies.Count * 0.9)] / (best * 1000), "adapter p90 ms / full-weight sync ms");
        var streamed = TimeStreams(options.Quick ? 5 : 30, adapterBlob.Length).Select(t => t * 1000).ToList();
        double streamP90 = streamed[(int)(streamed.Count * 0.9)];
        yield return new JsonObject
        {
            ["name"] = "weight-sync/adapter-stream",
            ["parameters"] = adapterParameters,
            ["megabytes"] = Math.Round(adapterBlob.Length / 1e6, 2),
            ["p50_ms"] = Math.Round(streamed[streamed.Count / 2], 1),
            ["p90_ms"] = Math.Round(streamP90, 1),
            ["chunked_p90_ms"] = Math.Round(latencies[(int)(latencies.Count * 0.9)], 1),
            ["full_sync_ms"] = Math.Round(bestStream * 1000, 1),
            ["error_log_lines"] = BenchAkkaLogger.Errors(a) + BenchAkkaLogger.Errors(b),
        }.WithRatio(streamP90 / (bestStream * 1000), "adapter p90 ms / streamed full-weight sync ms");
        // The fetching side leaves first, so the serving side usually sees an orderly disassociation; the figures are
        // taken, so neither side's log of the association's end (BenchAkkaLogger) is printed.
        BenchAkkaLogger.Quiet(a);
        BenchAkkaLogger.Quiet(b);
        b.Terminate().Wait(TimeSpan.FromSeconds(10));
        a.Terminate().Wait(TimeSpan.FromSeconds(10));
    }
}
