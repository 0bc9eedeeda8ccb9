using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Policy.Benchmarks;
using Rlft.Policy.Collectives;
using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using Rlft.Policy.Training;
using static TorchSharp.torch;

namespace Rlft.Host.Bench;

/// <summary>
/// The learner group's gradient all-reduce: a 100 MB fp32 gradient (25M parameters; 10 MB with --quick) summed over
/// N = 2 and 3 members on loopback TCP (one connection per pair, one thread per member, all in this process) and, for
/// comparison, over the in-process transport. <c>mb_per_s</c> is the gradient's size over the time of one all-reduce
/// (what a train step waits for); <c>bus_mb_per_s</c> counts what each member sends, 2(N−1)/N of the gradient
/// (NCCL's bus bandwidth), the figure to set against the link.
/// Then the train step itself (<c>learners/train-step</c>): N = 1, 2, 3 members in this process (threads, in-process
/// transport, libtorch's intra-op threads divided among them), each taking its share of a batch of 32 × 128 tokens
/// on the 4 layers × d256 bench model, summing gradients and stepping AdamW: samples/s, the scaling efficiency
/// (samples/s with N ÷ N × samples/s with one) and the fraction of the step spent in the group's sums.
/// </summary>
internal sealed class LearnersBenchmark : IBenchmark
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
        foreach (var line in TrainSteps(options)) yield return line;
    }

    IEnumerable<JsonObject> TrainSteps(BenchOptions options)
    {
        int batch = options.Quick ? 8 : 32, length = options.Quick ? 64 : 128, steps = options.Quick ? 2 : 4;
        var config = ModelPresets.Config("gpt2", "small", 4096, 0, 1);
        var rng = new Random(3);
        var ids = Enumerable.Range(0, batch).Select(_ => Enumerable.Range(0, length).Select(_ => (long)rng.Next(config.VocabSize)).ToArray()).ToArray();
        double solo = 0;
        int threads = get_num_threads();
        foreach (int size in new[] { 1, 2, 3 })
        {
            set_num_threads(Math.Max(1, threads / size));
            var groups = size == 1 ? [LearnerGroup.Solo] : InProcessTransport.Create(size).Select(t => new LearnerGroup(t)).ToArray();
            var seconds = new double[size];
            var communication = new double[size];
            var members = groups.Select((g, r) => new Thread(() =>
            {
                using var model = ModelFactory.CreateInitialized(config, seed: 0);
                model.train();
                using var optimizer = new TrainingOptimizer(model.parameters(), new OptimizerOptions { LearningRate = 1e-4, Schedule = LrSchedule.Constant }) { Group = g };
                var (start, count) = g.Share(batch);
                using var input = tensor(ids.Skip(start).Take(count).SelectMany(x => x).ToArray(), [count, length]);   // (b, T)
                long t0 = 0;
                for (int s = 0; s <= steps; s++)
                {
                    if (s == 1) { communication[r] = g.CommunicationTime.TotalSeconds; t0 = Stopwatch.GetTimestamp(); }   // after a warm-up step
                    using var scope = NewDisposeScope();
                    var loss = -LogProbs.OfSequences(model, input, null).mean() * ((double)count / batch);   // this share of the batch mean
                    optimizer.Backward(loss);
                    optimizer.Step();
                }
                seconds[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds / steps;
                communication[r] = (g.CommunicationTime.TotalSeconds - communication[r]) / steps;
            }, 64 << 20)).ToList();
            members.ForEach(t => t.Start());
            members.ForEach(t => t.Join());
            double step = seconds.Max(), samples = batch / step;
            if (size == 1) solo = samples;
            yield return new JsonObject
            {
                ["name"] = "learners/train-step",
                ["members"] = size,
                ["batch"] = batch,
                ["length"] = length,
                ["seconds_per_step"] = Math.Round(step, 3),
                ["samples_per_s"] = Math.Round(samples, 1),
                ["scaling_efficiency"] = Math.Round(samples / (size * solo), 3),
                ["communication_fraction"] = Math.Round(communication.Average() / step, 3),
                ["torch_threads_per_member"] = get_num_threads(),
            };
        }
        set_num_threads(threads);
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
