using System.Diagnostics;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
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

    static List<(string, string)> Sft(string path) => Jsonl.ReadSft(path).Select(e => (e.Prompt, e.Completion)).ToList();
    static List<(string, string, string)> Pairs(string path) => Jsonl.ReadPreferences(path).Select(e => (e.Prompt, e.Chosen, e.Rejected)).ToList();

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

        switch (stage.Kind)
        {
            case StageKind.Sft:
            {
                var (train, heldOut) = Split(stage, Sft);
                using var t = new SftTrainer(_trainable, stage.Optimizer, mixedPrecision: _mixed);
                Record("before", new() { ["eval/loss"] = t.Loss(heldOut) });
                Loop(train, t.Step);
                Record("after", new() { ["eval/loss"] = t.Loss(heldOut) });
                PolicyVersion++;
                break;
            }
            case StageKind.RewardModel:
            {
                var (train, heldOut) = Split(stage, Pairs);
                var trunk = _policy.FrozenCopy();
                foreach (var p in trunk.Model.parameters()) p.requires_grad = true;
                var head = new RewardHead(trunk.Model.Config.HiddenSize, _job.Seed);
                head.to(_device);
                _rm = new RewardModel(trunk, head);
                using var t = new RewardModelTrainer(_rm, stage.RewardModel, stage.Optimizer);
                Record("before", t.Evaluate(heldOut));
                Loop(train, t.Step);
                Record("after", t.Evaluate(heldOut));
                RewardModelVersion = RewardModelVersion < 0 ? 1 : RewardModelVersion + 1;
                break;
            }
            case StageKind.Dpo:
            {
                var (train, heldOut) = Split(stage, Pairs);
                // The stage-start policy: DPO's reference, and what the trained policy's samples are compared with.
                var start = _policy.FrozenCopy();
                using var t = new DpoTrainer(_trainable, new FrozenReference(start), stage.Dpo, stage.Optimizer, mixedPrecision: _mixed);
                var heldOutPairs = t.Encode(heldOut);
                var prompts = heldOut.Select(p => (p.Item1, (string?)null)).Take(_job.EvalPrompts).ToList();
                var taskReward = TaskReward(stage);
                Record("before", t.Evaluate(heldOutPairs));
                if (taskReward is not null) Record("before", Evaluator.Run(_policy, prompts, taskReward, EvalSampling(stage)).Metrics);
                if (stage.Dpo.PrecomputeReference) t.PrecomputeReference(train);
                Loop(train, t.Step);
                Record("after", t.Evaluate(heldOutPairs));
                Record("after", Evaluator.Run(_policy, prompts, taskReward, EvalSampling(stage), new FrozenReference(start), start, Judge(taskReward)).Metrics);
                start.Model.Dispose();
                PolicyVersion++;
                break;
            }
            case StageKind.Distill:
            {
                var teacherPath = stage.Teacher?.Path ?? throw new ConfigException($"rlft.job.stages[{stage.Index}].teacher.path: distillation needs a teacher checkpoint");
                var teacher = new PolicyModel(Checkpoint.Load(teacherPath, _device), HfTokenizer.Load(teacherPath));
                var (train, heldOut) = Split(stage, Sft);
                var prompts = heldOut.Select(p => (p.Item1, (string?)null)).Take(_job.EvalPrompts).ToList();
                var taskReward = TaskReward(stage);
                using var t = new DistillTrainer(_policy, teacher, stage.Distill, stage.Optimizer);
                Record("before", new() { ["eval/teacher_kl"] = t.Kl(heldOut) });
                if (taskReward is not null) Record("before", Evaluator.Run(_policy, prompts, taskReward, EvalSampling(stage)).Metrics);
                Loop(train, t.Step);
                Record("after", new() { ["eval/teacher_kl"] = t.Kl(heldOut) });
                if (taskReward is not null) Record("after", Evaluator.Run(_policy, prompts, taskReward, EvalSampling(stage)).Metrics);
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
