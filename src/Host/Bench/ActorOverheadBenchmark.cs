using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;
using Rlft.Policy.Benchmarks;

namespace Rlft.Host.Bench;

/// <summary>
/// The same short SFT → PPO job through the actor runtime (a one-member cluster, strictly on-policy)
/// and as a plain in-process loop; reports both wall times and their ratio (actor throughput relative
/// to the loop; 1.0 means the actors cost nothing).
/// </summary>
public sealed class ActorOverheadBenchmark : IBenchmark
{
    public string Name => "actors";

    static JobSpec Job(string dir, int sftSteps, int ppoSteps) => JobSpec.Parse(RlftConfig.ParseText($$"""
        rlft.job {
          name = bench
          seed = 5
          device = cpu
          output-dir = "{{dir}}"
          model { arch = gpt2, preset = tiny }
          max-policy-lag = 0
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

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        int sft = options.Quick ? 5 : 30, ppo = options.Quick ? 5 : 30;
        string root = Directory.CreateTempSubdirectory("rlft-bench-actors").FullName;
        try
        {
            var plainJob = Job(Path.Combine(root, "plain"), sft, ppo);
            var sw = Stopwatch.StartNew();
            var plain = PlainLoop.Run(plainJob, new TorchEngineFactory());
            double plainSeconds = sw.Elapsed.TotalSeconds;

            var actorJob = Job(Path.Combine(root, "actors"), sft, ppo);
            sw.Restart();
            var finished = RunActors(actorJob).GetAwaiter().GetResult();
            double actorSeconds = sw.Elapsed.TotalSeconds;
            yield return new JsonObject
            {
                ["name"] = "actors/ppo-job",
                ["sft_steps"] = sft,
                ["ppo_steps"] = ppo,
                ["plain_loop_seconds"] = Math.Round(plainSeconds, 2),
                ["actors_seconds"] = Math.Round(actorSeconds, 2),
                ["throughput_ratio"] = Math.Round(plainSeconds / actorSeconds, 3),
                ["plain_online_samples_per_second"] = Math.Round(plain.OnlineSamples / plain.OnlineSeconds, 1),
                ["actors_succeeded"] = finished,
            };
        }
        finally { Directory.Delete(root, true); }
    }

    static async Task<bool> RunActors(JobSpec job)
    {
        await using var node = RlftNode.Create(new NodeOptions { Job = job, Roles = ["learner", "rollout", "reward"] }, new TorchEngineFactory());
        await node.StartAsync();
        return (await node.Finished.WaitAsync(TimeSpan.FromMinutes(10))).Succeeded;
    }
}
