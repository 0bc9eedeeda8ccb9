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
/// with max-policy-lag = 1 (generation of the next batch overlaps training).
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

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        int sft = options.Quick ? 5 : 30, ppo = options.Quick ? 6 : 30;
        string root = Directory.CreateTempSubdirectory("rlft-bench-actors").FullName;
        try
        {
            var plainJob = Job(Path.Combine(root, "plain"), sft, ppo);
            var plainClock = new PpoClock(BatchSize);
            var sw = Stopwatch.StartNew();
            var plain = PlainLoop.Run(plainJob, new TorchEngineFactory(), (stage, step, _, _) => plainClock.Step(stage, step));
            double plainSeconds = sw.Elapsed.TotalSeconds;

            foreach (int lag in new[] { 0, 1 })
            {
                var actorJob = Job(Path.Combine(root, $"actors-lag{lag}"), sft, ppo, lag);
                var actorClock = new PpoClock(BatchSize);
                sw.Restart();
                var log = new BenchLog();
                var finished = RunActors(actorJob, actorClock, log).GetAwaiter().GetResult();
                double actorSeconds = sw.Elapsed.TotalSeconds;
                yield return new JsonObject
                {
                    ["name"] = $"actors/ppo-job-lag{lag}",
                    ["sft_steps"] = sft,
                    ["ppo_steps"] = ppo,
                    ["plain_loop_seconds"] = Math.Round(plainSeconds, 2),
                    ["actors_seconds"] = Math.Round(actorSeconds, 2),
                    ["throughput_ratio"] = Math.Round(plainSeconds / actorSeconds, 3),
                    ["plain_ppo_samples_per_second"] = Math.Round(plainClock.SamplesPerSecond, 1),
                    ["actors_ppo_samples_per_second"] = Math.Round(actorClock.SamplesPerSecond, 1),
                    ["steady_state_ratio"] = Math.Round(actorClock.SamplesPerSecond / plainClock.SamplesPerSecond, 3),
                    ["actors_succeeded"] = finished,
                    // Errors logged by the nodes from start to shutdown: 0 on a healthy run.
                    ["error_log_lines"] = log.Errors,
                }.WithRatio(plainSeconds / actorSeconds, "plain-loop seconds / actor-runtime seconds (whole job)");
            }
        }
        finally { Directory.Delete(root, true); }
    }

    static async Task<bool> RunActors(JobSpec job, PpoClock clock, BenchLog log)
    {
        bool succeeded;
        // The node is disposed (cluster left, system stopped) before the caller reads the log: shutdown counts too.
        await using (var node = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "rollout", "reward"], OnStatus = s => clock.Step(s.StageKind, s.Step), LoggerProvider = log,
        }, new TorchEngineFactory()))
        {
            await node.StartAsync();
            succeeded = (await node.Finished.WaitAsync(TimeSpan.FromMinutes(10))).Succeeded;
        }
        return succeeded;
    }
}
