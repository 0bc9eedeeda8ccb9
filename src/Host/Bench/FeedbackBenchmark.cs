using System.Text.Json.Nodes;
using Rlft.Actors.Feedback;
using Rlft.Policy.Benchmarks;

namespace Rlft.Host.Bench;

/// <summary>
/// Sustained durable ratings/s and POST latency with 50 concurrent simulated raters against a real feedback
/// node (Kestrel on loopback, SQLite journal): see <see cref="FeedbackBench"/>.
/// </summary>
public sealed class FeedbackBenchmark : IBenchmark
{
    public string Name => "feedback";

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        string line = options.Quick
            ? FeedbackBench.RunAsync(raters: 8, items: 200, duration: TimeSpan.FromSeconds(10)).GetAwaiter().GetResult()
            : FeedbackBench.RunAsync(raters: 50, items: 20_000, duration: TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
        yield return JsonNode.Parse(line)!.AsObject();
    }
}
