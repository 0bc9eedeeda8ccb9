using System.Text.Json.Nodes;
using Rlft.Actors.Feedback;
using Rlft.Policy.Benchmarks;

namespace Rlft.Host.Bench;

/// <summary>
/// Sustained durable ratings/s and POST latency with 50 concurrent simulated raters against a real feedback
/// node (Kestrel on loopback, SQLite journal): see <see cref="FeedbackBench"/>.
/// </summary>
internal sealed class FeedbackBenchmark : IBenchmark
{
    public string Name => "feedback";

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        string line = options.Quick
            ? FeedbackBench.RunAsync(raters: 8, items: 200, duration: TimeSpan.FromSeconds(10)).GetAwaiter().GetResult()
            : FeedbackBench.RunAsync(raters: 50, items: 20_000, duration: TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
        var o = JsonNode.Parse(line)!.AsObject();
        // The tail against the median: how evenly durable ratings are served under many raters.
        if (o["post_p50_ms"] is JsonValue p50 && p50.TryGetValue<double>(out var median) && o["post_p99_ms"] is JsonValue p99 && p99.TryGetValue<double>(out var tail) && median > 0)
            o.WithRatio(tail / median, "POST p99 ms / p50 ms");
        yield return o;
    }
}
