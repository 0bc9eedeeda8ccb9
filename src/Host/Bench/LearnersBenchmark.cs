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
/// Then the same with each member a process of its own (<c>learners/process-step</c>), pinned to its own CPUs where there
/// is one per member: the all-reduce across processes and the train step's scaling as a group of learner nodes sees it.
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
                        ["name"] = $"learners/all-reduce/{transport}/{size}",
                        ["transport"] = transport,
                        ["members"] = size,
                        ["gradient_mb"] = mb,
                        ["seconds_best"] = Math.Round(best, 4),
                        ["seconds_median"] = Math.Round(seconds.Order().ElementAt(seconds.Count / 2), 4),
                        ["mb_per_s"] = Math.Round(mb / best, 1),
                        ["bus_mb_per_s"] = Math.Round(mb * 2 * (size - 1) / size / best, 1),
                        ["threads"] = Environment.ProcessorCount,
                    }.WithRatio(mb / best / 1000, "all-reduce MB/s ÷ 1,000 MB/s (the goal for a 100 MB gradient)");
                }
                finally { foreach (var t in group) t.Dispose(); }
            }
        foreach (var line in TrainSteps(options)) yield return line;
        int threads = get_num_threads();
        try { foreach (var line in ProcessSteps(options)) yield return line; }
        finally { set_num_threads(threads); }   // --quick runs the members in this process, each setting its thread count
    }

    static (int Batch, int Length, int Steps) Shape(bool quick) => quick ? (8, 64, 2) : (32, 128, 4);

    /// <summary>
    /// One member's train steps on the bench model (4 layers × d256) over its share of the batch, summing gradients with
    /// the group and stepping AdamW; seconds per step and seconds per step in the group's sums, after a warm-up step.
    /// </summary>
    static (double Seconds, double Communication) MemberSteps(LearnerGroup g, bool quick)
    {
        var (batch, length, steps) = Shape(quick);
        var config = ModelPresets.Config("gpt2", "small", 4096, 0, 1);
        var rng = new Random(3);
        var ids = Enumerable.Range(0, batch).Select(_ => Enumerable.Range(0, length).Select(_ => (long)rng.Next(config.VocabSize)).ToArray()).ToArray();
        using var model = ModelFactory.CreateInitialized(config, seed: 0);
        model.train();
        using var optimizer = new TrainingOptimizer(model.parameters(), new OptimizerOptions { LearningRate = 1e-4, Schedule = LrSchedule.Constant }) { Group = g };
        var (start, count) = g.Share(batch);
        using var input = tensor(ids.Skip(start).Take(count).SelectMany(x => x).ToArray(), [count, length]);   // (b, T)
        long t0 = 0;
        double communication = 0;
        for (int s = 0; s <= steps; s++)
        {
            if (s == 1) { communication = g.CommunicationTime.TotalSeconds; t0 = Stopwatch.GetTimestamp(); }   // after a warm-up step
            using var scope = NewDisposeScope();
            var loss = -LogProbs.OfSequences(model, input, null).mean() * ((double)count / batch);   // this share of the batch mean
            optimizer.Backward(loss);
            optimizer.Step();
        }
        return (Stopwatch.GetElapsedTime(t0).TotalSeconds / steps, (g.CommunicationTime.TotalSeconds - communication) / steps);
    }

    /// <summary>
    /// <c>rlft bench-case learner</c>: member <paramref name="rank"/> of a group of processes over TCP (one per endpoint):
    /// the all-reduce of a 100 MB gradient (10 MB quick), then the train steps; one JSON line.
    /// </summary>
    public static JsonObject ProcessMember(int rank, string[] endpoints, int threads, bool quick)
    {
        set_num_threads(threads);
        var group = LearnerGroup.Solo;
        TcpTransport? transport = null;
        double allReduce = double.NaN;
        long elements = quick ? 2_500_000 : 25_000_000;
        if (endpoints.Length > 1)
        {
            var resolved = endpoints.Select(Rlft.Actors.Runtime.ClusterLearnerGroup.Resolve).ToList();
            var listener = new System.Net.Sockets.TcpListener(resolved[rank]);
            listener.Start();
            try { transport = TcpTransport.ConnectAsync(rank, resolved, listener, TimeSpan.FromSeconds(60)).GetAwaiter().GetResult(); }
            finally { listener.Stop(); }
            group = new LearnerGroup(transport);
            using var gradient = full(elements, rank + 1f);
            var seconds = new List<double>();
            for (int run = 0; run <= (quick ? 2 : 5); run++)
            {
                group.Sum(new double[] { 0 });   // the members start each all-reduce together
                var clock = Stopwatch.StartNew();
                AllReduce.SumAsync(transport, [gradient]).GetAwaiter().GetResult();
                if (run > 0) seconds.Add(clock.Elapsed.TotalSeconds);
            }
            allReduce = seconds.Min();
        }
        try
        {
            var (step, communication) = MemberSteps(group, quick);
            return new JsonObject
            {
                ["rank"] = rank,
                ["all_reduce_seconds"] = double.IsNaN(allReduce) ? null : Math.Round(allReduce, 4),
                ["gradient_mb"] = elements * 4 / 1e6,
                ["seconds_per_step"] = Math.Round(step, 4),
                ["communication_seconds"] = Math.Round(communication, 4),
                ["torch_threads"] = get_num_threads(),
            };
        }
        finally { transport?.Dispose(); }
    }

    /// <summary>
    /// <c>learners/process-step</c>: N = 1, 2, 3 members as processes of their own (<c>rlft bench-case learner</c>), each
    /// pinned to its own CPUs with taskset where the machine has a CPU per member, over loopback TCP; the first line is one
    /// learner with one thread on one CPU, and <c>vs_one_learner_on_one_cpu</c> is every line's samples/s over its.
    /// </summary>
    IEnumerable<JsonObject> ProcessSteps(BenchOptions options)
    {
        var (batch, length, _) = Shape(options.Quick);
        int cpus = Environment.ProcessorCount;
        double solo = 0, oneCore = 0;
        // First one learner on one CPU: against it, N learners on N CPUs show how the group scales per CPU it is given.
        foreach (int members in new[] { 0, 1, 2, 3 })
        {
            bool baseline = members == 0;
            int size = Math.Max(1, members);
            bool pinned = BenchCases.CanPin && cpus >= size;
            int perMember = baseline ? 1 : Math.Max(1, cpus / size);
            var endpoints = Enumerable.Range(0, size).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
            string name = baseline ? "learners/process-step/1-on-1-cpu" : $"learners/process-step/{size}";
            // --quick (the smoke test) runs the members' code on threads of this process instead of processes of their own.
            var children = Enumerable.Range(0, size).Select(r => options.Quick
                ? Task.Factory.StartNew(() => ProcessMember(r, endpoints, perMember, quick: true), TaskCreationOptions.LongRunning)
                : Task.Run(() => BenchCases.RunChild(["bench-case", "learner", "--rank", $"{r}", "--endpoints", string.Join(',', endpoints), "--threads", $"{perMember}"],
                    pinned ? $"{r * perMember}-{r * perMember + perMember - 1}" : null))).ToArray();
            var lines = children.Select(c => c.GetAwaiter().GetResult()).ToList();
            if (lines.FirstOrDefault(l => l.ContainsKey("error")) is { } failed)
            {
                yield return new JsonObject { ["name"] = name, ["members"] = size, ["error"] = failed["error"]!.GetValue<string>() };
                continue;
            }
            pinned &= !options.Quick;
            double step = lines.Max(l => l["seconds_per_step"]!.GetValue<double>()), samples = batch / step;
            if (baseline) oneCore = samples;
            else if (size == 1) solo = samples;
            var line = new JsonObject
            {
                ["name"] = name,
                ["members"] = size,
                ["batch"] = batch,
                ["length"] = length,
                ["seconds_per_step"] = Math.Round(step, 3),
                ["samples_per_s"] = Math.Round(samples, 1),
                ["scaling_efficiency"] = baseline ? null : Math.Round(samples / (size * solo), 3),
                ["vs_one_learner_on_one_cpu"] = Math.Round(samples / oneCore, 2),
                ["communication_fraction"] = Math.Round(lines.Average(l => l["communication_seconds"]!.GetValue<double>()) / step, 3),
                ["torch_threads_per_member"] = perMember,
                ["pinned"] = pinned,
            }.WithRatio(samples / oneCore, "samples/s ÷ one learner's on one CPU (processes)");
            if (size > 1)
            {
                double mb = lines[0]["gradient_mb"]!.GetValue<double>(), best = lines.Max(l => l["all_reduce_seconds"]!.GetValue<double>());
                line["all_reduce_gradient_mb"] = mb;
                line["all_reduce_mb_per_s"] = Math.Round(mb / best, 1);
                line["all_reduce_bus_mb_per_s"] = Math.Round(mb * 2 * (size - 1) / size / best, 1);
            }
            yield return line;
        }
    }

    static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        int port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    IEnumerable<JsonObject> TrainSteps(BenchOptions options)
    {
        var (batch, length, _) = Shape(options.Quick);
        double solo = 0;
        int threads = get_num_threads();
        foreach (int size in new[] { 1, 2, 3 })
        {
            set_num_threads(Math.Max(1, threads / size));
            var groups = size == 1 ? [LearnerGroup.Solo] : InProcessTransport.Create(size).Select(t => new LearnerGroup(t)).ToArray();
            var seconds = new double[size];
            var communication = new double[size];
            var members = groups.Select((g, r) => new Thread(() => (seconds[r], communication[r]) = MemberSteps(g, options.Quick), 64 << 20)).ToList();
            members.ForEach(t => t.Start());
            members.ForEach(t => t.Join());
            double step = seconds.Max(), samples = batch / step;
            if (size == 1) solo = samples;
            yield return new JsonObject
            {
                ["name"] = $"learners/train-step/{size}",
                ["members"] = size,
                ["batch"] = batch,
                ["length"] = length,
                ["seconds_per_step"] = Math.Round(step, 3),
                ["samples_per_s"] = Math.Round(samples, 1),
                ["scaling_efficiency"] = Math.Round(samples / (size * solo), 3),
                ["communication_fraction"] = Math.Round(communication.Average() / step, 3),
                ["torch_threads_per_member"] = get_num_threads(),
            }.WithRatio(samples / (size * solo), "samples/s ÷ (N × one learner's samples/s), threads in one process");
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
