using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;
using Rlft.Policy.Benchmarks;

namespace Rlft.Host.Bench;

/// <summary>
/// The same short SFT → PPO job through the actor runtime (a one-member cluster) and as a plain
/// in-process loop. Two ratios (actor throughput relative to the loop; 1.0 means the actors cost
/// nothing): whole-job wall time, which includes forming the cluster and stopping it, and steady-state
/// PPO samples/s, timed from the end of the first PPO step to the end of the last (start-up, SFT and
/// evaluation excluded). The actors run strictly on-policy (max-policy-lag = 0, the loop's schedule) and
/// with max-policy-lag = 1 (generation of the next batch overlaps training). The three jobs alternate in rounds, the
/// first round uncounted (it compiles what they share), and each figure is the median over the others.
/// </summary>
internal sealed class ActorOverheadBenchmark : IBenchmark
{
    public string Name => "actors";

    static JobSpec Job(string dir, int sftSteps, int ppoSteps, int lag = 0) => JobSpec.Parse(RlftConfig.ParseText($$"""
        rlft.job {
          name = bench
          seed = 5
          device = cpu
          output-dir = "{{dir}}"
          model { arch = gpt2, preset = tiny }
          max-policy-lag = {{lag}}
          eval-prompts = 8
          stages = [
            { kind = sft, data = "builtin:sft", steps = {{sftSteps}}, batch-size = 16 }
            { kind = ppo, data = "builtin:prompts", steps = {{ppoSteps}}, batch-size = 16
              sampling { max-new-tokens = 12 }
              ppo { epochs = 2 }
              rewards { sources = [ { type = task } ] }
            }
          ]
        }
        """, "bench-job.conf"));

    /// <summary>Times PPO steps 1..N: samples/s between the end of step 1 and the end of step N.</summary>
    sealed class PpoClock(int batchSize)
    {
        readonly Stopwatch _clock = Stopwatch.StartNew();
        double _first = double.NaN, _last = double.NaN;
        int _firstStep, _lastStep;

        public void Step(string kind, int step)
        {
            if (!kind.Equals("ppo", StringComparison.OrdinalIgnoreCase) && !kind.EndsWith("-ppo", StringComparison.Ordinal)) return;
            double now = _clock.Elapsed.TotalSeconds;
            if (double.IsNaN(_first)) (_first, _firstStep) = (now, step);
            (_last, _lastStep) = (now, step);
        }

        public double SamplesPerSecond => (_lastStep - _firstStep) * batchSize / (_last - _first);
    }

    const int BatchSize = 16;

    /// <summary>One job's timings: whole job, steady-state PPO samples/s, and for the actors the start (node created to
    /// its first step) and the stop (job finished to node disposed).</summary>
    sealed record Timing(double Seconds, double SamplesPerSecond, double StartSeconds = 0, double StopSeconds = 0, bool Succeeded = true, long Errors = 0);

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        int sft = options.Quick ? 5 : 30, ppo = options.Quick ? 6 : 30, rounds = options.Quick ? 1 : 3;
        string root = Directory.CreateTempSubdirectory("rlft-bench-actors").FullName;
        try
        {
            // A first round, not counted: the plain loop ran first and cold, compiling the code both paths share, and
            // its cold steps made the actors look faster than they are (steady-state lag-1 ratio 1.58 alone, 1.15-1.29
            // once the loop is warm). Then rounds of plain, lag 0, lag 1 alternate; each figure is the median over rounds.
            var runs = new List<(Timing Plain, Timing Lag0, Timing Lag1)>();
            for (int round = 0; round <= rounds; round++)
            {
                string dir = Path.Combine(root, $"round{round}");
                var plain = Plain(Job(Path.Combine(dir, "plain"), sft, ppo));
                var lag0 = Actors(Job(Path.Combine(dir, "lag0"), sft, ppo, lag: 0));
                var lag1 = Actors(Job(Path.Combine(dir, "lag1"), sft, ppo, lag: 1));
                if (round > 0) runs.Add((plain, lag0, lag1));
                Directory.Delete(dir, true);
            }
            double plainSeconds = Median(runs.Select(r => r.Plain.Seconds)), plainRate = Median(runs.Select(r => r.Plain.SamplesPerSecond));
            foreach (int lag in new[] { 0, 1 })
            {
                var actors = runs.Select(r => lag == 0 ? r.Lag0 : r.Lag1).ToList();
                double actorSeconds = Median(actors.Select(a => a.Seconds)), actorRate = Median(actors.Select(a => a.SamplesPerSecond));
                yield return new JsonObject
                {
                    ["name"] = $"actors/ppo-job-lag{lag}",
                    ["sft_steps"] = sft,
                    ["ppo_steps"] = ppo,
                    ["rounds"] = rounds,
                    ["plain_loop_seconds"] = Math.Round(plainSeconds, 2),
                    ["actors_seconds"] = Math.Round(actorSeconds, 2),
                    // Of the actors' whole job: forming the one-member cluster up to the first step, and leaving it after the job.
                    ["actors_start_seconds"] = Math.Round(Median(actors.Select(a => a.StartSeconds)), 2),
                    ["actors_stop_seconds"] = Math.Round(Median(actors.Select(a => a.StopSeconds)), 2),
                    ["throughput_ratio"] = Math.Round(plainSeconds / actorSeconds, 3),
                    ["plain_ppo_samples_per_second"] = Math.Round(plainRate, 1),
                    ["actors_ppo_samples_per_second"] = Math.Round(actorRate, 1),
                    ["steady_state_ratio"] = Math.Round(actorRate / plainRate, 3),
                    ["actors_succeeded"] = actors.All(a => a.Succeeded),
                    // Errors logged by the nodes from start to shutdown: 0 on a healthy run.
                    ["error_log_lines"] = actors.Sum(a => a.Errors),
                }.WithRatio(plainSeconds / actorSeconds, "plain-loop seconds / actor-runtime seconds (whole job)");
            }
        }
        finally { Directory.Delete(root, true); }
    }

    static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToList();
        return v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }

    static Timing Plain(JobSpec job)
    {
        var clock = new PpoClock(BatchSize);
        var sw = Stopwatch.StartNew();
        PlainLoop.Run(job, new TorchEngineFactory(), (stage, step, _, _) => clock.Step(stage, step));
        return new Timing(sw.Elapsed.TotalSeconds, clock.SamplesPerSecond);
    }

    static Timing Actors(JobSpec job)
    {
        var clock = new PpoClock(BatchSize);
        var log = new BenchLog();
        var sw = Stopwatch.StartNew();
        double firstStep = double.NaN, finishedAt;
        bool succeeded;
        // The node is disposed (cluster left, system stopped) before the log is read: shutdown counts too.
        var node = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "rollout", "reward"], LoggerProvider = log,
            OnStatus = s =>
            {
                if (double.IsNaN(firstStep)) firstStep = sw.Elapsed.TotalSeconds;
                clock.Step(s.StageKind, s.Step);
            },
        }, new TorchEngineFactory());
        try
        {
            node.StartAsync().GetAwaiter().GetResult();
            succeeded = node.Finished.WaitAsync(TimeSpan.FromMinutes(10)).GetAwaiter().GetResult().Succeeded;
            finishedAt = sw.Elapsed.TotalSeconds;
        }
        finally { node.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        double seconds = sw.Elapsed.TotalSeconds;
        return new Timing(seconds, clock.SamplesPerSecond, firstStep, seconds - finishedAt, succeeded, log.Errors);
    }
}
