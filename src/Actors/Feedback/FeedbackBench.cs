using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace Rlft.Actors.Feedback;

/// <summary>
/// Sustained durable ratings per second through the real stack (HTTP on loopback → actor → SQLite journal):
/// Simulated raters each loop GET next + POST rating until the items run out or the
/// time is up. Prints nothing; returns one JSON line for <c>rlft bench</c>.
/// </summary>
internal static class FeedbackBench
{
    public static async Task<string> RunAsync(int raters = 50, int items = 20_000, TimeSpan? duration = null, string? workDirectory = null, CancellationToken ct = default)
    {
        string dir = workDirectory ?? Path.Combine(Path.GetTempPath(), "rlft-feedback-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var tokens = Enumerable.Range(0, raters).Select(_ => RaterTokens.NewToken()).ToList();
        string admin = RaterTokens.NewToken();
        var options = new FeedbackOptions
        {
            Journal = Path.Combine(dir, "feedback.db"),
            Raters = tokens.Select((t, i) => new RaterEntry($"bench-{i}", RaterTokens.Hash(t))).ToList(),
            AdminTokenSha256 = RaterTokens.Hash(admin),
            RatePerSecond = 1_000_000,
            RateBurst = 1_000_000,
        };
        await using var app = FeedbackNode.Build(options, ["http://127.0.0.1:0"]);
        await app.StartAsync(ct);
        try
        {
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = raters * 2 }) { BaseAddress = new Uri(app.Urls.First()) };
            var adminClient = new FeedbackClient(http, admin);
            // Batches of 200 stay under the 64 KiB request limit.
            for (int start = 0; start < items; start += 200)
                await adminClient.EnqueueAsync(Enumerable.Range(start, Math.Min(200, items - start)).Select(i => (object)(i % 2 == 0
                    ? new { kind = "compare", prompt = $"prompt {i}", completions = new[] { $"a tidy answer {i}", $"a tidy tidy answer {i}" } }
                    : new { kind = "score", prompt = $"prompt {i}", completions = new[] { $"answer {i} tidy" } })), ct);

            var latencies = new ConcurrentBag<double>();
            int failures = 0;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            stop.CancelAfter(duration ?? TimeSpan.FromSeconds(20));
            var clock = Stopwatch.StartNew();
            var workers = tokens.Select(t => Task.Run(async () =>
            {
                var rater = new SimulatedRater(new FeedbackClient(http, t), "tidy");
                try
                {
                    return await rater.RunAsync(int.MaxValue, null, (r, latency) =>
                    {
                        if (r.Status == HttpStatusCode.Created) latencies.Add(latency.TotalMilliseconds);
                        else Interlocked.Increment(ref failures);
                    }, stop.Token);
                }
                catch (OperationCanceledException) { return 0; }
            }, CancellationToken.None)).ToList();
            await Task.WhenAll(workers);
            double seconds = clock.Elapsed.TotalSeconds;
            var sorted = latencies.Order().ToArray();
            return JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["name"] = "feedback/ratings",
                ["raters"] = raters,
                ["ratings"] = sorted.Length,
                ["failed"] = failures,
                ["seconds"] = Math.Round(seconds, 2),
                ["ratings_per_s"] = Math.Round(sorted.Length / seconds, 1),
                ["post_p50_ms"] = Percentile(sorted, 0.50) is { } p50 ? Math.Round(p50, 2) : "n/a",
                ["post_p99_ms"] = Percentile(sorted, 0.99) is { } p99 ? Math.Round(p99, 2) : "n/a",
            });
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
            if (workDirectory is null) TryDelete(dir);
        }
    }

    static double? Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? null : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

    static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
