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

namespace Rlft.Actors.Compute;

/// <summary>
/// The offline stages (SFT, reward model, DPO, distillation): each runs to the end here and reports held-out
/// figures measured before and after it, on data it did not train on — the stage's <c>eval-data</c>, or else the
/// last 5% of its data (at least 8 records), which is then left out of training. Keys are
/// <c>before/eval/…</c> and <c>after/eval/…</c>:
/// SFT <c>loss</c>; reward model <c>accuracy</c>, <c>margin</c>; DPO <c>accuracy</c> and <c>margin</c> of the implicit
/// reward, and after it <c>reward</c>, <c>kl</c> and <c>win_rate</c> of samples against the stage-start policy;
/// distillation <c>teacher_kl</c> and the student's <c>reward</c>.
/// Data in any of TRL's formats is read through <see cref="DatasetFormats"/> and encoded once, before the stage trains,
/// by the stage's <see cref="EncoderFor">encoder</see>: a conversation rendered by its chat template, the loss where the
/// stage's completion-only-loss and assistant-only-loss put it; an example that cannot be encoded stops the stage
/// with its file and line.
/// </summary>
public sealed partial class TorchLearnerEngine
{
    string DataPath(StageSpec stage, string data, string key) =>
        DataResolver.Resolve(data, _job.RunDirectory, _job.Seed, $"rlft.job.stages[{stage.Index}].{key}");

    static IEnumerable<List<T>> Batches<T>(IReadOnlyList<T> data, int size, int steps)
    {
        for (int s = 0; s < steps; s++) yield return Enumerable.Range(0, size).Select(i => data[(s * size + i) % data.Count]).ToList();
    }

    /// <summary>The stage's training records and held-out records (its eval-data, or the last 5% of its data).</summary>
    (List<T> Train, List<T> HeldOut) Split<T>(StageSpec stage, Func<string, List<T>> read)
    {
        var all = read(DataPath(stage, stage.Data, "data"));
        if (stage.EvalData is { } eval) return (all, read(DataPath(stage, eval, "eval-data")));
        int held = Math.Clamp(all.Count / 20, Math.Min(8, all.Count / 2), 256);
        return held == 0 ? (all, all) : (all.Take(all.Count - held).ToList(), all.Skip(all.Count - held).ToList());
    }

    /// <summary>The SFT-format examples of the last sft or distill stage as they were trained on (tests read the masks).</summary>
    internal IReadOnlyList<EncodedExample> TrainedExamples { get; private set; } = [];

    /// <summary>SFT-format records with each encoded as the stage trains on it.</summary>
    static List<(SftRecord Record, EncodedExample Example)> Sft(string path, ExampleEncoder encoder, SftLoss loss) =>
        DatasetFormats.ReadSft(path).Select(r => (r, r.Encode(encoder, loss))).ToList();

    /// <summary>Preference records with both sides encoded.</summary>
    static List<(PreferenceRecord Record, EncodedPair Pair)> Pairs(string path, ExampleEncoder encoder) =>
        DatasetFormats.ReadPreferences(path).Select(r => (r, r.Encode(encoder))).ToList();

    /// <summary>The held-out prompts an evaluation samples from (the records' prompts; conversations rendered by the stage's template).</summary>
    List<PromptInput> EvalPrompts<T>(IEnumerable<T> records, Func<T, PromptInput?> prompt) =>
        records.Select(prompt).OfType<PromptInput>().Take(_job.EvalPrompts).ToList();

    public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken cancellationToken)
    {
        _trainable.Model.GradientCheckpointing = _policy.Model.GradientCheckpointing = stage.GradientCheckpointing;   // distillation trains _policy
        var figures = new Dictionary<string, double>();
        void Record(string label, Dictionary<string, double> metrics) { foreach (var (k, v) in metrics) figures[$"{label}/{k}"] = v; }
        void Loop<T>(IReadOnlyList<T> data, Func<List<T>, Dictionary<string, double>> step)
        {
            int i = 0;
            foreach (var batch in Batches(data, stage.BatchSize, stage.Steps))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var sw = Stopwatch.StartNew();
                var m = step(batch);
                m["timing/step"] = sw.Elapsed.TotalSeconds;
                progress(new StageProgress(stage.Index, ++i, stage.Steps, m));
            }
        }

        var encoder = EncoderFor(stage);
        var policy = _policy.WithEncoder(encoder);
        var loss = new SftLoss(stage.CompletionOnlyLoss, stage.AssistantOnlyLoss);
        switch (stage.Kind)
        {
            case StageKind.Sft:
            {
                var (train, heldOut) = Split(stage, path => Sft(path, encoder, loss));
                TrainedExamples = train.Select(x => x.Example).ToList();
                var heldOutExamples = heldOut.Select(x => x.Example).ToList();
                using var t = new SftTrainer(_trainable, stage.Optimizer, mixedPrecision: _mixed);
                Record("before", new() { ["eval/loss"] = t.Loss(heldOutExamples) });
                Loop(TrainedExamples, t.Step);
                Record("after", new() { ["eval/loss"] = t.Loss(heldOutExamples) });
                PolicyVersion++;
                break;
            }
            case StageKind.RewardModel:
            {
                var (train, heldOut) = Split(stage, path => Pairs(path, encoder));
                // The reward model sees conversations as this stage renders them, wherever it scores later.
                var trunk = _policy.FrozenCopy().WithEncoder(encoder);
                _rmTemplate = TemplateSource(_job.ChatTemplateFor(stage));
                foreach (var p in trunk.Model.parameters()) p.requires_grad = true;
                var head = new RewardHead(trunk.Model.Config.HiddenSize, _job.Seed);
                head.to(_device);
                _rm = new RewardModel(trunk, head);
                using var t = new RewardModelTrainer(_rm, stage.RewardModel, stage.Optimizer);
                var heldOutPairs = heldOut.Select(x => x.Pair).ToList();
                Record("before", t.Evaluate(heldOutPairs));
                Loop(train.Select(x => x.Pair).ToList(), t.Step);
                Record("after", t.Evaluate(heldOutPairs));
                RewardModelVersion = RewardModelVersion < 0 ? 1 : RewardModelVersion + 1;
                break;
            }
            case StageKind.Dpo:
            {
                var (train, heldOut) = Split(stage, path => Pairs(path, encoder));
                // The stage-start policy: DPO's reference, and what the trained policy's samples are compared with.
                // With a quantized base the reference is the base plus the adapters as the stage found them (no second copy).
                var start = _job.QuantizedBase ? null : _policy.FrozenCopy().WithEncoder(encoder);
                IReferencePolicy reference = start is null ? StageReference(resume: false) : new FrozenReference(start);
                using var t = new DpoTrainer(_trainable, reference, stage.Dpo, stage.Optimizer, mixedPrecision: _mixed);
                var trainPairs = train.Select(x => x.Pair).ToList();
                var heldOutPairs = heldOut.Select(x => x.Pair).ToList();
                var prompts = EvalPrompts(heldOut, x => x.Record.EvalPrompt(encoder));
                var taskReward = TaskReward(stage);
                Record("before", t.Evaluate(heldOutPairs));
                if (taskReward is not null) Record("before", Evaluator.Run(policy, prompts, taskReward, EvalSampling(stage)).Metrics);
                if (stage.Dpo.PrecomputeReference) t.PrecomputeReference(trainPairs);
                Loop(trainPairs, t.Step);
                Record("after", t.Evaluate(heldOutPairs));
                Record("after", Evaluator.Run(policy, prompts, taskReward, EvalSampling(stage), reference, start, Judge(taskReward)).Metrics);
                start?.Model.Dispose();
                PolicyVersion++;
                break;
            }
            case StageKind.Distill:
            {
                var teacherPath = stage.Teacher?.Path ?? throw new ConfigException($"rlft.job.stages[{stage.Index}].teacher.path: distillation needs a teacher checkpoint");
                var teacher = new PolicyModel(Checkpoint.Load(teacherPath, _device), HfTokenizer.Load(teacherPath));
                // The teacher shares the student's vocabulary and reads the sequences as the student's encoder made them.
                var (train, heldOut) = Split(stage, path => Sft(path, encoder, loss));
                TrainedExamples = train.Select(x => x.Example).ToList();
                var heldOutExamples = heldOut.Select(x => x.Example).ToList();
                var prompts = EvalPrompts(heldOut, x => x.Record.EvalPrompt(encoder));
                var taskReward = TaskReward(stage);
                using var t = new DistillTrainer(_policy, teacher, stage.Distill, stage.Optimizer);
                Record("before", new() { ["eval/teacher_kl"] = t.Kl(heldOutExamples) });
                if (taskReward is not null) Record("before", Evaluator.Run(policy, prompts, taskReward, EvalSampling(stage)).Metrics);
                Loop(TrainedExamples, t.Step);
                Record("after", new() { ["eval/teacher_kl"] = t.Kl(heldOutExamples) });
                if (taskReward is not null) Record("after", Evaluator.Run(policy, prompts, taskReward, EvalSampling(stage)).Metrics);
                teacher.Model.Dispose();
                PolicyVersion++;
                break;
            }
            default:
                throw new InvalidOperationException($"stage {stage.Name} ({stage.Kind}) is not an offline stage");
        }
        return new StageCompleted(stage.Index, PolicyVersion, RewardModelVersion, figures);
    }
}
