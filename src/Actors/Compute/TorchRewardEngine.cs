using System.Diagnostics;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Heads;
using Rlft.Policy.Runtime;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Actors.Compute;

/// <summary>
/// Scores rollouts with the stage's reward sources: the job's reward model (fetched from the learner)
/// and/or the built-in task's rule, weighted. Non-finite scores are replaced by 0 and reported dropped.
/// </summary>
public sealed class TorchRewardEngine(JobSpec job) : IRewardEngine
{
    readonly Device _device = TorchRuntime.ResolveDevice(job.Device);
    RewardModel? _rm;

    public long RewardModelVersion { get; private set; } = -1;
    public bool NeedsRewardModel => job.Stages.Any(s => s.IsOnline && Sources(s).Any(x => x.Type == "reward-model"));

    public void ApplyRewardModel(long version, byte[] blob)
    {
        var contents = ModelBlob.Unpack(blob);
        if (_rm is null)
        {
            var trunk = ModelFiles.Build(contents.Files, _device, "reward-model");
            _rm = new RewardModel(trunk, new RewardHead(trunk.Model.Config.HiddenSize));
            _rm.Head.to(_device);
        }
        ModelBlob.CopyInto(_rm.Trunk.Model, contents.Tensors, "trunk.");
        ModelBlob.CopyInto(_rm.Head, contents.Tensors, "head.");
        foreach (var t in contents.Tensors.Values) t.Dispose();
        RewardModelVersion = version;
    }

    public Task<ScoredBatch> ScoreAsync(RolloutBatch batch, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        var stage = job.Stages[batch.Stage];
        var sources = Sources(stage);
        var items = batch.Samples.Select(s => (s.Prompt, s.Completion)).ToList();
        var names = sources.Select(s => s.Type).ToArray();
        var components = sources.Select(s => s.Type switch
        {
            "reward-model" => (_rm ?? throw new InvalidOperationException("the reward model has not been trained or received yet")).ScoreTexts(items),
            _ => batch.Samples.Select(x => (float)ReviewTask.Score(x.Prompt, x.Completion, x.Answer)).ToArray(),
        }).ToArray();
        var totals = new float[items.Count];
        var dropped = new List<int>();
        for (int i = 0; i < totals.Length; i++)
        {
            totals[i] = (float)sources.Select((s, k) => s.Weight * components[k][i]).Sum();
            if (!float.IsFinite(totals[i])) { totals[i] = 0; dropped.Add(i); }
        }
        return Task.FromResult(new ScoredBatch(batch.BatchId, totals, names, components, dropped.ToArray(),
            dropped.Select(_ => "non-finite score").ToArray(), sw.Elapsed.TotalSeconds));
    }

    /// <summary>The stage's reward sources: <c>rewards.sources = [{ type = reward-model | task, weight = w }]</c>.</summary>
    public static IReadOnlyList<(string Type, double Weight)> Sources(StageSpec stage)
    {
        if (stage.Rewards is null) return [("task", 1.0)];
        stage.Rewards.RejectUnknownKeys("", ["sources"]);
        var list = stage.Rewards.GetObjectList("sources");
        if (list.Count == 0) throw new ConfigException($"rlft.job.stages[{stage.Index}].rewards.sources: at least one source is needed");
        return list.Select((s, i) =>
        {
            string at = $"rlft.job.stages[{stage.Index}].rewards.sources[{i}]";
            try
            {
                s.RejectUnknownKeys("", ["type", "weight"]);
                return (s.GetEnum("type", ["reward-model", "task"]), s.GetDouble("weight", 1.0));
            }
            catch (ConfigException e) { throw new ConfigException($"{at}.{e.Message.Split(" (in ")[0]}"); }
        }).ToList();
    }

    public void Dispose() => _rm?.Trunk.Model.Dispose();
}
