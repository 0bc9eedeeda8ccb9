using System.Net;
using System.Net.Sockets;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Cluster;

/// <summary>Short jobs on the tiny model, and the plumbing to run them on real (loopback) clusters.</summary>
internal static class JobHarness
{
    /// <summary>
    /// Akka settings for tests: every message serialized (ours through RlftSerializer, which they are bound
    /// to), quick failure detection. Akka's own local cluster messages carry no serializer binding, so
    /// verifying them needs the fallback that strict mode removes; strict mode itself is covered by
    /// SerializationTests.
    /// </summary>
    public const string TestHocon = """
        akka.actor.serialize-messages = on
        akka.actor.serialization-settings.allow-unregistered-types = on
        akka.cluster.split-brain-resolver.stable-after = 3s
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 3s
        """;

    /// <summary>
    /// For tests where nodes die: quick failure detection without serialize-messages, because Akka's own cluster
    /// events (ReachabilityChanged) do not survive that round trip, and a split-brain resolver that misses them
    /// decides on a broken view. Messages between nodes are serialized anyway.
    /// </summary>
    public const string NodeLossHocon = """
        akka.cluster.split-brain-resolver.stable-after = 3s
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 3s
        """;

    public static JobSpec Job(string stages, string extra = "", string around = "") =>
        JobSpec.Parse(RlftConfig.ParseText(JobText(stages, extra, around), "test-job.conf"));

    /// <summary>
    /// A short job on the tiny model writing to a fresh temp folder: <paramref name="extra"/> goes inside
    /// rlft.job, <paramref name="around"/> beside it (an akka or rlft.feedback section).
    /// </summary>
    public static string JobText(string stages, string extra = "", string around = "")
    {
        string dir = Directory.CreateTempSubdirectory("rlft-job").FullName;
        return $$"""
            {{around}}
            rlft.job {
              name = test
              seed = 3
              device = cpu
              output-dir = "{{dir.Replace("\\", "/")}}"
              model { arch = gpt2, preset = tiny }
              eval-prompts = 8
              {{extra}}
              stages = [
                {{stages}}
              ]
            }
            """;
    }

    /// <summary><see cref="JobText"/> written to a job file of its own, for `rlft` processes to read.</summary>
    public static string JobFile(string stages, string extra = "", string around = "")
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("rlft-jobfile").FullName, "job.conf");
        File.WriteAllText(path, JobText(stages, extra, around));
        return path;
    }

    // Akka's HOCON parser refuses a comma after an object value, so object-valued keys go on their own lines.
    public const string Sft = "{ kind = sft, data = \"builtin:sft\", steps = 15, batch-size = 16\n optimizer { lr = 2e-3 }\n}";
    public const string RewardModel = "{ kind = reward-model, data = \"builtin:preferences\", steps = 10, batch-size = 16\n optimizer { lr = 1e-3 }\n}";
    public static string Ppo(int steps, string rewards = "sources = [ { type = task } ]") =>
        $"{{ kind = ppo, data = \"builtin:prompts\", eval-data = \"builtin:eval-prompts\", steps = {steps}, batch-size = 8\n sampling {{ max-new-tokens = 8 }}\n ppo {{ epochs = 1 }}\n rewards {{ {rewards} }}\n}}";

    /// <summary>The full reward pipeline: the job's reward model plus the task rule, a repetition penalty and batch whitening.</summary>
    public const string PipelineRewards = "components = [ { name = rm, source = reward-model, model = job }\n { name = task, source = function, function = review-task, weight = 0.5 }\n { name = repetition, source = repetition, n = 2, weight = 0.1, normalize = batch } ]";

    /// <summary>The training steps of a run's metrics.jsonl, without the stages' held-out figures (lines with "eval").</summary>
    public static string[] TrainingSteps(string runDirectory) =>
        File.ReadLines(Path.Combine(runDirectory, "metrics.jsonl")).Where(l => !l.Contains("\"eval\":", StringComparison.Ordinal)).ToArray();

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A free loopback port for a founding node, and its address as a seed.</summary>
    public static (int Port, string Address) NewSeed()
    {
        int port = FreePort();
        return (port, $"akka.tcp://{RlftNode.SystemName}@127.0.0.1:{port}");
    }

    /// <summary>A node with only the rollout role that joins through <paramref name="seed"/>.</summary>
    public static RlftNode RolloutNode(JobSpec job, string seed, IEngineFactory? engines = null, string hocon = TestHocon) =>
        RlftNode.Create(new NodeOptions { Job = job, Roles = ["rollout"], SeedNodes = [seed], ExtraHocon = hocon }, engines ?? new RecordingFactory());

    /// <summary>
    /// Runs <paramref name="job"/> on one node with every role until it finishes; the caller disposes the node once it
    /// has looked inside the engines <paramref name="engines"/> made (disposing it releases them).
    /// </summary>
    public static async Task<(RlftNode Node, JobFinished Finished)> RunAllRoles(JobSpec job, IEngineFactory engines, CancellationToken ct, int minutes = 3)
    {
        var node = RlftNode.Create(new NodeOptions { Job = job, Roles = ["learner", "rollout", "reward"], ExtraHocon = TestHocon }, engines);
        try
        {
            await node.StartAsync(ct);
            return (node, await node.Finished.WaitAsync(TimeSpan.FromMinutes(minutes), ct));
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>Remembers the engines it makes so tests can look inside them.</summary>
    public sealed class RecordingFactory : IEngineFactory
    {
        readonly TorchEngineFactory _inner = new();
        public List<TorchRolloutEngine> Rollouts { get; } = new();
        public List<TorchLearnerEngine> Learners { get; } = new();

        public ILearnerEngine CreateLearner(JobSpec job, string? resumeFrom = null) { var e = (TorchLearnerEngine)_inner.CreateLearner(job, resumeFrom); lock (Learners) Learners.Add(e); return e; }
        public IRolloutEngine CreateRollout(JobSpec job, int index) { var e = (TorchRolloutEngine)_inner.CreateRollout(job, index); lock (Rollouts) Rollouts.Add(e); return e; }
        public List<TorchRewardEngine> Rewards { get; } = new();
        public IRewardEngine CreateReward(JobSpec job, int index, Rlft.Reward.Sources.IHumanRatingPort? humanRatings) { var e = (TorchRewardEngine)_inner.CreateReward(job, index, humanRatings); lock (Rewards) Rewards.Add(e); return e; }
    }
}
