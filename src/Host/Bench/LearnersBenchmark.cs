using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Policy.Benchmarks;
using Rlft.Policy.Collectives;
using static TorchSharp.torch;

namespace Rlft.Host.Bench;

/// <summary>
/// The learner group's gradient all-reduce: a 100 MB fp32 gradient (25M parameters; 10 MB with --quick) summed over
/// N = 2 and 3 members on loopback TCP (one connection per pair, one thread per member, all in this process) and, for
/// comparison, over the in-process transport. <c>mb_per_s</c> is the gradient's size over the time of one all-reduce
/// (what a train step waits for); <c>bus_mb_per_s</c> counts what each member sends, 2(N−1)/N of the gradient
/// (NCCL's bus bandwidth), the figure to set against the link.
/// </summary>
public sealed class LearnersBenchmark : IBenchmark
{
    public string Name => "learners";

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        long elements = options.Quick ? 2_500_000 : 25_000_000;
        int repeats = options.Quick ? 2 : 5;
        foreach (int size in new[] { 2, 3 })
            foreach (var transport in new[] { "tcp", "in-process" })
            {
                ICollectiveTransport[] group = transport == "tcp"
                    ? TcpTransport.LoopbackGroupAsync(size, TimeSpan.FromSeconds(30)).GetAwaiter().GetResult()
                    : InProcessTransport.Create(size);
                try
                {
                    var seconds = Measure(group, elements, repeats);
                    double mb = elements * 4 / 1e6, best = seconds.Min();
                    yield return new JsonObject
                    {
                        ["name"] = "learners/all-reduce",
                        ["transport"] = transport,
                        ["members"] = size,
                        ["gradient_mb"] = mb,
                        ["seconds_best"] = Math.Round(best, 4),
                        ["seconds_median"] = Math.Round(seconds.Order().ElementAt(seconds.Count / 2), 4),
                        ["mb_per_s"] = Math.Round(mb / best, 1),
                        ["bus_mb_per_s"] = Math.Round(mb * 2 * (size - 1) / size / best, 1),
                        ["threads"] = Environment.ProcessorCount,
                    };
                }
                finally { foreach (var t in group) t.Dispose(); }
            }
    }

    /// <summary>Seconds per all-reduce (slowest member) over <paramref name="repeats"/> runs after one warm-up.</summary>
    static List<double> Measure(ICollectiveTransport[] group, long elements, int repeats)
    {
        var seconds = new List<double>();
        var gradients = group.Select(t => full(elements, t.Rank + 1f)).ToArray();
        try
        {
            for (int run = 0; run <= repeats; run++)
            {
                using var start = new Barrier(group.Length);
                var clocks = new double[group.Length];
                var threads = group.Select((t, r) => new Thread(() =>
                {
                    start.SignalAndWait();
                    var clock = Stopwatch.StartNew();
                    AllReduce.SumAsync(t, [gradients[r]]).GetAwaiter().GetResult();
                    clocks[r] = clock.Elapsed.TotalSeconds;
                })).ToList();
                threads.ForEach(t => t.Start());
                threads.ForEach(t => t.Join());
                if (run > 0) seconds.Add(clocks.Max());
            }
        }
        finally { foreach (var g in gradients) g.Dispose(); }
        return seconds;
    }
}
