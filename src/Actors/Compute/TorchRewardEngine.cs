using System.Diagnostics;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Heads;
using Rlft.Policy.Runtime;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Reward;
using RewardPipeline = Rlft.Reward.Pipeline.RewardPipeline;
using Rlft.Reward.Sources;
using Rlft.Rollout.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Actors.Compute;

/// <summary>
/// Scores rollouts for the stage being trained. A stage's <c>rewards</c> takes either the full reward
/// pipeline (<c>components = [...]</c>, see hocon/rewards/example.conf: rules, remote HTTP scorers,
/// the job's reward model as <c>source = reward-model, model = job</c>, normalisation, clipping) or the
/// short form <c>sources = [{ type = reward-model | task, weight }]</c>. The reward model is fetched
/// from the learner; a <c>source = human</c> component asks raters through <paramref name="humanRatings"/> (the
/// feedback actor). Dropped or non-finite samples are reported with their reasons.
/// </summary>
internal sealed class TorchRewardEngine(JobSpec job, IHumanRatingPort? humanRatings = null) : IRewardEngine
{
    /// <summary>The name under which a pipeline spec refers to the reward model the job trains.</summary>
    public const string JobRewardModel = "job";

    readonly Device _device = TorchRuntime.ResolveDevice(job.Device);
    readonly Dictionary<int, RewardPipeline> _pipelines = new();
    readonly HttpClient _http = new();
    RewardModel? _rm;

    public long RewardModelVersion { get; private set; } = -1;
    // Read once: the reward actor asks before every batch.
    readonly Lazy<bool> _needsRewardModel = new(() => job.Stages.Any(s => s.IsOnline && UsesRewardModel(s)));

    public bool NeedsRewardModel => _needsRewardModel.Value;

    /// <summary>Whether the stage's rewards include the job's reward model (a pipeline component or a short-form source).</summary>
    public static bool UsesRewardModel(StageSpec s) => UsesPipeline(s)
        ? RewardSpecReader.Read(s.Config!).Components.Any(c => c.Source is RewardModelSpec)
        : Sources(s).Any(x => x.Type == "reward-model");

    static bool UsesPipeline(StageSpec s) => s.Rewards?.Has("components") == true && s.Config is not null;

    RewardPipeline Pipeline(StageSpec stage)
    {
        if (_pipelines.TryGetValue(stage.Index, out var p)) return p;
        var env = new RewardEnvironment
        {
            Http = _http,
            HumanRatings = humanRatings,
            Functions = Functions(job),
            RewardModels = name => name == JobRewardModel
                ? new JobRewardModelScorer(this)
                : throw new ArgumentException($"unknown reward model '{name}': a job's stages can use the reward model it trains, model = {JobRewardModel}"),
            // A classifier named stage:NAME is the model an encoder stage of this job wrote (encoders/NAME in the run directory).
            ModelPaths = model => EncoderStageSpec.Resolve(job, model),
        };
        try { return _pipelines[stage.Index] = RewardSpecReader.Build(stage.Config!, env); }
        catch (ConfigException e) { throw new ConfigException($"rlft.job.stages[{stage.Index}].{e.Message}"); }
    }

    /// <summary>The reward functions a job's <c>source = function</c> components can name: the built-ins and the built-in task's.</summary>
    public static RewardFunctionRegistry Functions() =>
        RewardFunctionRegistry.WithBuiltIns().Register("review-task", s => ReviewTask.Score(s.TaskText, s.Completion, s.Reference));

    /// <summary>The functions <paramref name="job"/>'s components can name: the built-ins, and those its program registered.</summary>
    public static RewardFunctionRegistry Functions(JobSpec job) => job.RewardFunctions ?? Functions();

    RewardModel Rm => _rm ?? throw new InvalidOperationException("the reward model has not been trained or received yet");

    /// <summary>
    /// The job's reward model as a pipeline source: a conversation is scored as the reward model sees it, the reply
    /// appended as the assistant's turn and rendered with the reward model's own template and tokenizer.
    /// </summary>
    sealed class JobRewardModelScorer(TorchRewardEngine engine) : ISequenceScorer
    {
        public Task<float[]> ScoreAsync(IReadOnlyList<(string Prompt, string Completion)> items, CancellationToken ct) =>
            Task.FromResult(engine.Rm.ScoreTexts(items));

        public Task<float[]> ScoreSamplesAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct) =>
            Task.FromResult(engine.Rm.ScoreSamples(batch.Select(s => (s.AsPrompt, s.Completion)).ToList()));
    }

    public void ApplyRewardModel(long version, byte[] blob)
    {
        var contents = ModelBlob.Unpack(blob);
        if (_rm is null)
        {
            var trunk = ModelFiles.Build(contents.Files, _device, "reward-model");
            // The trunk in model.frozen-dtype; the head stays fp32 and reads the hidden state in fp32.
            PolicyModel.Freeze(trunk.Model, job.Model.FrozenDtype);
            _rm = new RewardModel(trunk, new RewardHead(trunk.Model.Config.HiddenSize));
            _rm.Head.to(_device);
        }
        ModelBlob.CopyInto(_rm.Trunk.Model, contents.Tensors, "trunk.");
        ModelBlob.CopyInto(_rm.Head, contents.Tensors, "head.");
        foreach (var t in contents.Tensors.Values) t.Dispose();
        RewardModelVersion = version;
    }

    public bool AcceptsLocalWeights => true;

    /// <summary>The reward model (null until one is received); tests compare its storage with the learner's.</summary>
    internal RewardModel? RewardModel => _rm;

    /// <summary>
    /// The reward model from the learner's shelf in this process: its trunk takes the shelved tensors' storage (the
    /// model is rebuilt on the meta device; a copy only where model.frozen-dtype differs), the small head is copied.
    /// </summary>
    public void ApplyLocalRewardModel(long version, WeightSync.LocalWeights weights)
    {
        const string trunkPrefix = "trunk.", headPrefix = "head.";
        var trunkTensors = weights.Tensors.Where(kv => kv.Key.StartsWith(trunkPrefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[trunkPrefix.Length..], kv => kv.Value);
        var (trunk, _) = ModelFiles.BuildSharedPolicy(weights.Files, trunkTensors, job.Model.FrozenDtype, "reward-model");
        var head = new RewardHead(trunk.Model.Config.HiddenSize);
        head.to(_device);
        ModelBlob.CopyInto(head, weights.Tensors, headPrefix);
        if (_rm is not null) { _rm.Trunk.Model.Dispose(); _rm.Head.Dispose(); }
        _rm = new RewardModel(trunk, head);
        RewardModelVersion = version;
    }

    public async Task<ScoredBatch> ScoreAsync(RolloutBatch batch, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        var stage = job.Stages[batch.Stage];
        if (UsesPipeline(stage))
        {
            var samples = batch.Samples.Select(x => new RewardSample(x.Prompt, x.Completion, x.Answer, Messages: x.Messages)).ToList();
            var scored = await Pipeline(stage).ScoreAsync(samples, cancellationToken);
            var componentNames = scored.Samples.FirstOrDefault()?.Components.Select(c => c.Name).ToArray() ?? [];
            var componentValues = componentNames.Select((_, k) => scored.Samples.Select(s => (float)(s.Components[k].Weighted ?? double.NaN)).ToArray()).ToArray();
            var droppedIdx = scored.Samples.Select((s, i) => (s, i)).Where(x => x.s.Dropped).ToList();
            return new ScoredBatch(batch.BatchId, scored.Samples.Select(s => (float)(s.Total ?? 0)).ToArray(), componentNames, componentValues,
                droppedIdx.Select(x => x.i).ToArray(), droppedIdx.Select(x => x.s.DroppedReason ?? "dropped").ToArray(), sw.Elapsed.TotalSeconds);
        }
        var sources = Sources(stage);
        var items = batch.Samples.Select(s => (Prompt: new PromptInput(s.Prompt, s.Answer, s.Messages), s.Completion)).ToList();
        var names = sources.Select(s => s.Type).ToArray();
        var components = sources.Select(s => s.Type switch
        {
            "reward-model" => Rm.ScoreSamples(items),
            _ => items.Select(x => (float)ReviewTask.Score(x.Prompt.TaskText, x.Completion, x.Prompt.Answer)).ToArray(),
        }).ToArray();
        var totals = new float[items.Count];
        var dropped = new List<int>();
        for (int i = 0; i < totals.Length; i++)
        {
            totals[i] = (float)sources.Select((s, k) => s.Weight * components[k][i]).Sum();
            if (!float.IsFinite(totals[i])) { totals[i] = 0; dropped.Add(i); }
        }
        return new ScoredBatch(batch.BatchId, totals, names, components, dropped.ToArray(),
            dropped.Select(_ => ScoredBatch.NonFiniteReason).ToArray(), sw.Elapsed.TotalSeconds);
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

    public void Dispose()
    {
        _rm?.Trunk.Model.Dispose();
        _http.Dispose();
    }
}
