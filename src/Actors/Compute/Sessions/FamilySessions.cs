using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Regularization;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;

namespace Rlft.Actors.Compute.Sessions;

/// <summary>
/// Stages over the built-in task family (<see cref="TaskFamily"/>): meta-learning (Reptile, through the
/// <see cref="OuterLoop"/> with the tasks as its participants) and k-shot adaptation to held-out tasks. Both report
/// each task's held-out SFT loss and sampled reward — <c>eval/TASK/loss</c>, <c>eval/TASK/reward</c> and their means
/// <c>eval/loss</c>, <c>eval/reward</c> — before and after.
/// </summary>
internal static class FamilySessions
{
    /// <summary>A family task's data, encoded by the stage's encoder: its training examples, held-out examples and held-out prompts.</summary>
    sealed record TaskData(string Name, List<EncodedExample> Train, List<EncodedExample> HeldOut, List<PromptInput> Prompts);

    static string TaskPath(OfflineRun run, string task, string part) =>
        DataResolver.Resolve($"builtin:{DataResolver.FamilyPrefix}{task}/{part}", run.Job.RunDirectory, run.Job.Seed, $"rlft.job.stages[{run.Stage.Index}]");

    static TaskData Load(OfflineRun run, string task)
    {
        string Path(string part) => TaskPath(run, task, part);
        var train = run.Sft(Path("sft")).Select(x => x.Example).ToList();
        var heldOut = run.Sft(Path("eval-sft"));
        return new TaskData(task, train, heldOut.Select(x => x.Example).Take(64).ToList(), run.EvalPrompts(heldOut, x => x.Record.EvalPrompt(run.Encoder)));
    }

    /// <summary>A task's held-out loss and greedy reward, recorded under <paramref name="label"/> as <c>eval/TASK/…</c>.</summary>
    static (double Loss, double Reward) Evaluate(OfflineRun run, TaskData task, string label)
    {
        double loss = SftTrainer.Loss(run.Engine.Trainable, task.HeldOut);
        double reward = RetentionProbe.Reward(run.Policy, task.Prompts, run.Engine.EvalSampling(run.Stage));
        run.Record(label, new() { [$"eval/{task.Name}/loss"] = loss, [$"eval/{task.Name}/reward"] = reward });
        return (loss, reward);
    }

    /// <summary>The means over tasks, recorded under <paramref name="label"/> as <c>eval/loss</c> and <c>eval/reward</c>.</summary>
    static void RecordMeans(OfflineRun run, IReadOnlyList<(double Loss, double Reward)> figures, string label) =>
        run.Record(label, new() { ["eval/loss"] = figures.Average(f => f.Loss), ["eval/reward"] = figures.Average(f => f.Reward) });

    /// <summary>Held-out loss and greedy reward of each task, and their means, under <paramref name="label"/>.</summary>
    static void Evaluate(OfflineRun run, IReadOnlyList<TaskData> tasks, string label) =>
        RecordMeans(run, tasks.Select(t => Evaluate(run, t, label)).ToList(), label);

    /// <summary>The inner loop's optimizer: the stage's settings over <paramref name="steps"/> steps, from a fresh state each time.</summary>
    static OptimizerOptions Inner(StageSpec stage, int steps) =>
        stage.Optimizer with { TotalSteps = steps, WarmupSteps = Math.Min(stage.Optimizer.WarmupSteps, steps - 1) };

    static void RefuseMixedPrecision(OfflineRun run)
    {
        if (run.Engine.Mixed is not null)
            throw new ConfigException($"rlft.job.stages[{run.Stage.Index}].kind: {run.Stage.Kind} stages train in fp32; set rlft.job.precision = fp32");
    }

    /// <summary>
    /// Reptile (Nichol et al., 2018): each of the stage's steps is one outer round — <c>tasks-per-round</c> tasks drawn
    /// without replacement (seeded by the job), each trained <c>meta.steps</c> steps of SFT (or, with <c>meta.inner = dpo</c>,
    /// of DPO on the task's preference pairs against the round's weights) from the current weights with a fresh optimizer, and the weights moved <c>outer-lr</c> of the way toward the adapted weights' mean. Trains the
    /// policy's trainable parameters (all of them, or the LoRA adapters where they are attached).
    /// </summary>
    public static OfflineProduct Meta(OfflineRun run)
    {
        RefuseMixedPrecision(run);
        var (engine, stage, spec) = (run.Engine, run.Stage, run.Stage.Meta!);
        var tasks = spec.Tasks.Select(t => Load(run, t)).ToList();
        var model = engine.Trainable;
        var inner = Inner(stage, spec.InnerSteps);
        var participants = spec.Inner == StageKind.Dpo
            ? tasks.Select(t => (IParticipant)new DpoParticipant(t.Name, model, run.Pairs(TaskPath(run, t.Name, "preferences")).Select(x => x.Pair).ToList(), stage.Dpo, inner, spec.InnerSteps, stage.BatchSize)).ToList()
            : tasks.Select(t => (IParticipant)new SftParticipant(t.Name, model, t.Train, inner, spec.InnerSteps, stage.BatchSize)).ToList();
        var trainable = TrainableParameters.Of(model.Model);
        using var global = WeightSet.Snapshot(trainable);
        var loop = new OuterLoop(Aggregation.Mean, new ServerSgd(spec.OuterLr));
        var rng = new Random(unchecked(run.Job.Seed * 7919 + stage.Index));
        Evaluate(run, tasks, "before");
        try
        {
            run.Loop(Enumerable.Range(0, stage.Steps).ToList(), rounds =>
            {
                var chosen = participants.OrderBy(_ => rng.Next()).Take(spec.TasksPerRound).ToList();
                return loop.Round(global, chosen, rounds[0]);
            }, batchSize: 1);
        }
        finally { global.CopyTo(trainable); }
        Evaluate(run, tasks, "after");
        return OfflineProduct.Policy;
    }

    /// <summary>
    /// k-shot adaptation: for each task, the first <c>adapt.shots</c> of its examples and the stage's steps of SFT from the
    /// weights the stage began with, evaluated on the task's held-out data before (zero-shot) and after, and its held-out
    /// loss after every step (<c>after/adapt/TASK/loss@K</c>, the curve). The weights are restored after each task: an
    /// adapt stage measures, it does not change the policy.
    /// </summary>
    public static OfflineProduct Adapt(OfflineRun run)
    {
        RefuseMixedPrecision(run);
        var (engine, stage, spec) = (run.Engine, run.Stage, run.Stage.Adapt!);
        var tasks = spec.Tasks.Select(t => Load(run, t)).ToList();
        var model = engine.Trainable;
        var trainable = TrainableParameters.Of(model.Model);
        using var start = WeightSet.Snapshot(trainable);
        Evaluate(run, tasks, "before");
        // The curve starts at the zero-shot loss.
        var curve = new double[stage.Steps + 1];
        curve[0] = run.Figures["before/eval/loss"];
        var adapted = new List<(double Loss, double Reward)>();
        try
        {
            for (int k = 0; k < tasks.Count; k++)
            {
                var task = tasks[k];
                var shots = task.Train.Take(spec.Shots).ToList();
                var inner = Inner(stage, stage.Steps);
                using var t = new SftTrainer(model, inner, trainable.Select(p => p.Parameter));
                var participant = new SftParticipant(task.Name, model, shots, inner, stage.Steps, stage.BatchSize);
                var batches = participant.NextBatches();
                int step = 0;
                run.Loop(batches, b =>
                {
                    var m = t.Step(b[0]);
                    double loss = t.Loss(task.HeldOut);
                    step++;
                    curve[step] += loss / tasks.Count;
                    m[$"adapt/{task.Name}/heldout_loss"] = loss;
                    return m;
                }, batchSize: 1, offset: k * stage.Steps, total: tasks.Count * stage.Steps);
                adapted.Add(Evaluate(run, task, "after"));
                start.CopyTo(trainable);
            }
        }
        finally { start.CopyTo(trainable); }
        RecordMeans(run, adapted, "after");
        for (int s = 0; s <= stage.Steps; s++) run.Figures[$"after/adapt/loss@{s}"] = curve[s];
        return OfflineProduct.None;
    }
}
