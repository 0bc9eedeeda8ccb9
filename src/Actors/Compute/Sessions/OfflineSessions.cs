using System.Diagnostics;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Heads;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Data;
using TorchSharp;

namespace Rlft.Actors.Compute.Sessions;

/// <summary>
/// One offline stage as it runs in the learner: its data (read and encoded once, with the held-out part set aside),
/// its steps, and the figures it records before and after training. The learner's models come from
/// <see cref="TorchLearnerEngine"/>; what the stage produces (a policy or a reward model version) the engine counts.
/// </summary>
internal sealed class OfflineRun(TorchLearnerEngine engine, StageSpec stage, Action<StageProgress> progress, CancellationToken cancellationToken)
{
    public TorchLearnerEngine Engine => engine;
    public StageSpec Stage => stage;
    public JobSpec Job => engine.Job;
    public ExampleEncoder Encoder { get; } = engine.EncoderFor(stage);
    public SftLoss Loss { get; } = new(stage.CompletionOnlyLoss, stage.AssistantOnlyLoss);
    /// <summary>The policy with the stage's encoder (what evaluations sample).</summary>
    public PolicyModel Policy => engine.Policy.WithEncoder(Encoder);
    /// <summary>Held-out figures by key: <c>before/…</c> and <c>after/…</c>.</summary>
    public Dictionary<string, double> Figures { get; } = new();

    public void Record(string label, Dictionary<string, double> metrics) { foreach (var (k, v) in metrics) Figures[$"{label}/{k}"] = v; }

    /// <summary>
    /// Whether this learner measures what a stage reports: a learner alone, or the leader of a group. The replicas of a
    /// group train exactly as the leader does and skip what only reports (nobody reads their figures).
    /// </summary>
    public bool Measures => engine.Group.IsLeader;

    /// <summary>Records <paramref name="measure"/>'s figures where this learner <see cref="Measures"/>; elsewhere it is not run.</summary>
    public void Measure(string label, Func<Dictionary<string, double>> measure) { if (Measures) Record(label, measure()); }

    /// <summary>
    /// The stage's steps over <paramref name="data"/>, batch by batch (wrapping around), reporting each as step
    /// <paramref name="offset"/> + s + 1 of <paramref name="total"/> (default: the stage's steps).
    /// </summary>
    /// <param name="stop">Asked after each step: true ends the stage there (early stopping).</param>
    public void Loop<T>(IReadOnlyList<T> data, Func<List<T>, Dictionary<string, double>> step, int? batchSize = null, int offset = 0, int? total = null, Func<bool>? stop = null)
    {
        int size = batchSize ?? stage.BatchSize;
        for (int s = 0; s < stage.Steps; s++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = Enumerable.Range(0, size).Select(i => data[(s * size + i) % data.Count]).ToList();
            var sw = Stopwatch.StartNew();
            var m = step(batch);
            m["timing/step"] = sw.Elapsed.TotalSeconds;
            progress(new StageProgress(stage.Index, offset + s + 1, total ?? stage.Steps, m));
            if (stop?.Invoke() == true) return;
        }
    }

    string DataPath(string data, string key) =>
        DataResolver.Resolve(data, Job.RunDirectory, Job.Seed, $"rlft.job.stages[{stage.Index}].{key}");

    /// <summary>The stage's training records and held-out records (its eval-data, or the last 5% of its data).</summary>
    public (List<T> Train, List<T> HeldOut) Split<T>(Func<string, List<T>> read)
    {
        var all = read(DataPath(stage.Data, "data"));
        if (stage.EvalData is { } eval) return (all, read(DataPath(eval, "eval-data")));
        int held = Math.Clamp(all.Count / 20, Math.Min(8, all.Count / 2), 256);
        return held == 0 ? (all, all) : (all.Take(all.Count - held).ToList(), all.Skip(all.Count - held).ToList());
    }

    /// <summary>SFT-format records with each encoded as the stage trains on it.</summary>
    public List<(SftRecord Record, EncodedExample Example)> Sft(string path) =>
        DatasetFormats.ReadSft(path).Select(r => (r, r.Encode(Encoder, Loss))).ToList();

    /// <summary>Preference records with both sides encoded.</summary>
    public List<(PreferenceRecord Record, EncodedPair Pair)> Pairs(string path) =>
        DatasetFormats.ReadPreferences(path).Select(r => (r, r.Encode(Encoder))).ToList();

    /// <summary>The held-out prompts an evaluation samples from (the records' prompts; conversations rendered by the stage's template).</summary>
    public List<PromptInput> EvalPrompts<T>(IEnumerable<T> records, Func<T, PromptInput?> prompt) =>
        records.Select(prompt).OfType<PromptInput>().Take(Job.EvalPrompts).ToList();
}

/// <summary>What an offline stage made: a new policy version, a new reward model version, or nothing (a measurement).</summary>
internal enum OfflineProduct { Policy, RewardModel, None }

/// <summary>
/// The offline stages (SFT, reward model, DPO, distillation): each runs to the end in the learner and reports held-out
/// figures measured before and after it, on data it did not train on — the stage's <c>eval-data</c>, or else the
/// last 5% of its data (at least 8 records), which is then left out of training. Keys are
/// <c>before/eval/…</c> and <c>after/eval/…</c>:
/// SFT <c>loss</c>; reward model <c>accuracy</c>, <c>margin</c>; DPO <c>accuracy</c> and <c>margin</c> of the implicit
/// reward, and after it <c>reward</c>, <c>kl</c> and <c>win_rate</c> of samples against the stage-start policy;
/// distillation <c>teacher_kl</c> and the student's <c>reward</c>.
/// Data in any of TRL's formats is read through <see cref="DatasetFormats"/> and encoded once, before the stage trains,
/// by the stage's encoder: a conversation rendered by its chat template, the loss where the
/// stage's completion-only-loss and assistant-only-loss put it; an example that cannot be encoded stops the stage
/// with its file and line.
/// </summary>
internal static class OfflineSessions
{
    public static OfflineProduct Run(OfflineRun run) => run.Stage.Kind switch
    {
        StageKind.Sft => SftSession.Run(run),
        StageKind.Classify => EncoderSessions.Classify(run),
        StageKind.Qa => EncoderSessions.Qa(run),
        StageKind.RewardModel when run.Stage.TrainsEncoder => EncoderSessions.RewardModel(run),
        StageKind.RewardModel => RewardModel(run),
        StageKind.Dpo => Dpo(run),
        StageKind.Distill => Distill(run),
        StageKind.Meta => FamilySessions.Meta(run),
        StageKind.Adapt => FamilySessions.Adapt(run),
        _ => throw new InvalidOperationException($"stage {run.Stage.Name} ({run.Stage.Kind}) is not an offline stage"),
    };

    static OfflineProduct RewardModel(OfflineRun run)
    {
        var engine = run.Engine;
        var (train, heldOut) = run.Split(run.Pairs);
        // The reward model sees conversations as this stage renders them, wherever it scores later.
        var trunk = engine.Policy.FrozenCopy().WithEncoder(run.Encoder);
        foreach (var p in trunk.Model.parameters()) p.requires_grad = true;
        var head = new RewardHead(trunk.Model.Config.HiddenSize, run.Job.Seed);
        head.to(engine.Device);
        var rm = engine.ReplaceRewardModel(new RewardModel(trunk, head), run.Job.ChatTemplateFor(run.Stage));
        using var t = new RewardModelTrainer(rm, run.Stage.RewardModel, run.Stage.Optimizer) { Group = engine.Group };
        var heldOutPairs = heldOut.Select(x => x.Pair).ToList();
        run.Measure("before", () => t.Evaluate(heldOutPairs));
        run.Loop(train.Select(x => x.Pair).ToList(), t.Step);
        run.Measure("after", () => t.Evaluate(heldOutPairs));
        return OfflineProduct.RewardModel;
    }

    static OfflineProduct Dpo(OfflineRun run)
    {
        var (engine, stage) = (run.Engine, run.Stage);
        var (train, heldOut) = run.Split(run.Pairs);
        // The stage-start policy: DPO's reference, and what the trained policy's samples are compared with.
        // With adapters attached (a quantized base, or LoRA in a job with no online stage) the reference is the base plus
        // the adapters as the stage found them (no second copy): the base with the adapters off while they are still zero,
        // as TRL's DPOTrainer with a PEFT model and no ref_model; after a LoRA SFT stage, the SFT'd policy.
        var start = run.Job.QuantizedBase || engine.Adapters is not null ? null : engine.Policy.FrozenCopy(run.Job.Model.FrozenDtype).WithEncoder(run.Encoder);
        IReferencePolicy reference = start is null ? engine.StageReference(resume: false) : new FrozenReference(start);
        using var t = new DpoTrainer(engine.Trainable, reference, stage.Dpo, stage.Optimizer, mixedPrecision: engine.Mixed) { Group = engine.Group };
        var trainPairs = train.Select(x => x.Pair).ToList();
        var heldOutPairs = heldOut.Select(x => x.Pair).ToList();
        var prompts = run.EvalPrompts(heldOut, x => x.Record.EvalPrompt(run.Encoder));
        var taskReward = TorchLearnerEngine.TaskReward(stage);
        var sampling = engine.EvalSampling(stage);
        run.Measure("before", () => t.Evaluate(heldOutPairs, stage.BatchSize));
        if (taskReward is not null) run.Measure("before", () => Evaluator.Run(run.Policy, prompts, taskReward, sampling).Metrics);
        if (stage.Dpo.PrecomputeReference) t.PrecomputeReference(trainPairs);
        run.Loop(trainPairs, pairs =>
        {
            var m = t.Step(pairs);
            m["train/tokens"] = pairs.Sum(p => p.Chosen.Ids.Length + p.Rejected.Ids.Length);
            return m;
        });
        run.Measure("after", () => t.Evaluate(heldOutPairs, stage.BatchSize));
        run.Measure("after", () => Evaluator.Run(run.Policy, prompts, taskReward, sampling, reference, start, engine.Judge(taskReward)).Metrics);
        start?.Model.Dispose();
        return OfflineProduct.Policy;
    }

    static OfflineProduct Distill(OfflineRun run)
    {
        var (engine, stage) = (run.Engine, run.Stage);
        var teacherPath = stage.Teacher?.Path ?? throw new ConfigException($"rlft.job.stages[{stage.Index}].teacher.path: distillation needs a teacher checkpoint");
        var teacher = new PolicyModel(PolicyModel.Freeze(Checkpoint.Load(teacherPath, engine.Device), run.Job.Model.FrozenDtype), HfTokenizer.Load(teacherPath));
        // The teacher shares the student's vocabulary and reads the sequences as the student's encoder made them.
        var (train, heldOut) = run.Split(run.Sft);
        engine.TrainedExamples = train.Select(x => x.Example).ToList();
        var heldOutExamples = heldOut.Select(x => x.Example).ToList();
        var prompts = run.EvalPrompts(heldOut, x => x.Record.EvalPrompt(run.Encoder));
        var taskReward = TorchLearnerEngine.TaskReward(stage);
        var sampling = engine.EvalSampling(stage);
        using var t = new DistillTrainer(engine.Policy, teacher, stage.Distill, stage.Optimizer) { Group = engine.Group };
        run.Measure("before", () => new Dictionary<string, double> { ["eval/teacher_kl"] = t.Kl(heldOutExamples) });
        if (taskReward is not null) run.Measure("before", () => Evaluator.Run(run.Policy, prompts, taskReward, sampling).Metrics);
        run.Loop(engine.TrainedExamples, t.Step);
        run.Measure("after", () => new Dictionary<string, double> { ["eval/teacher_kl"] = t.Kl(heldOutExamples) });
        if (taskReward is not null) run.Measure("after", () => Evaluator.Run(run.Policy, prompts, taskReward, sampling).Metrics);
        teacher.Model.Dispose();
        return OfflineProduct.Policy;
    }
}
