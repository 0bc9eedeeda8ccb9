using Rlft.Actors.Configuration;
using Rlft.Policy.Chat;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Regularization;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Compute.Sessions;

/// <summary>
/// An SFT stage, with what keeps sequential fine-tuning general and what adapts its learning rate: <c>replay</c> mixes
/// earlier SFT stages' examples into each batch (<see cref="ReplayMixer{T}"/>), <c>l2-sp</c> pulls toward the stage's
/// starting weights, <c>ewc</c> toward the previous policy stage's end weights weighted by the Fisher diagonal estimated
/// on that stage's examples; every <c>eval-every</c> steps the held-out loss is measured (<c>eval/loss</c> in the step's
/// metrics), feeding <c>early-stopping</c> (which ends the stage after <c>patience</c> evaluations without improvement and
/// restores the best weights) and the plateau schedule. Reports held-out loss before and after, and on the task family's
/// data the held-out greedy reward, and leaves a <see cref="RetentionProbe"/> for later stages.
/// </summary>
internal static class SftSession
{
    /// <summary>Examples of the held-out Fisher estimate (a sample of the earlier stage's training examples).</summary>
    const int FisherExamples = 64;

    public static OfflineProduct Run(OfflineRun run)
    {
        var (engine, stage) = (run.Engine, run.Stage);
        var (train, heldOut) = run.Split(run.Sft);
        engine.TrainedExamples = train.Select(x => x.Example).ToList();
        engine.SftExamples[stage.Index] = engine.TrainedExamples;
        var heldOutExamples = heldOut.Select(x => x.Example).ToList();
        bool regularized = stage.L2Sp > 0 || stage.Ewc > 0 || stage.EarlyStopping is not null;
        if (regularized && engine.Mixed is not null)
            throw new ConfigException($"rlft.job.stages[{stage.Index}]: l2-sp, ewc and early-stopping train in fp32; set rlft.job.precision = fp32");
        // The parameters that train (all, or the LoRA adapters), on the fp32 model.
        var parameters = TrainableParameters.Of(engine.Policy.Model);
        using var t = new SftTrainer(engine.Trainable, stage.Optimizer, mixedPrecision: engine.Mixed) { Group = engine.Group, EvalBatchSize = stage.BatchSize };
        var penalties = new List<IParameterPenalty>();
        using var early = stage.EarlyStopping is { } options ? new EarlyStopping(options, parameters) : null;
        try
        {
            if (stage.L2Sp > 0) penalties.Add(new L2SpPenalty(parameters, stage.L2Sp));
            if (stage.Ewc > 0)
            {
                var earlier = engine.SftExamples.GetValueOrDefault(stage.EwcStage ?? -1)
                    ?? throw new ConfigException($"rlft.job.stages[{stage.Index}].ewc: stage {stage.EwcStage} is not an SFT stage; EWC estimates its Fisher information on an earlier SFT stage's examples");
                var sample = earlier.Take(FisherExamples).ToList();
                var fisher = FisherDiagonal.Estimate(engine.Policy, sample, parameters);
                penalties.Add(new EwcPenalty(parameters, fisher, stage.Ewc));
                foreach (var f in fisher.Values) f.Dispose();
            }
            t.Penalties = penalties;

            // On the task family's data the held-out prompts are scored too (greedy, by the family's rule): later stages report how much of it stays.
            var prompts = stage.Data.StartsWith("builtin:family/", StringComparison.Ordinal) ? run.EvalPrompts(heldOut, x => x.Record.EvalPrompt(run.Encoder)) : null;
            var sampling = engine.EvalSampling(stage);
            run.Measure("before", () => new Dictionary<string, double> { ["eval/loss"] = t.Loss(heldOutExamples) });
            if (prompts is not null) run.Measure("before", () => new Dictionary<string, double> { ["eval/reward"] = RetentionProbe.Reward(run.Policy, prompts, sampling) });

            var mixer = stage.Replay > 0
                ? new ReplayMixer<EncodedExample>(engine.TrainedExamples, engine.SftExamples.Where(kv => kv.Key < stage.Index).Select(kv => kv.Value).ToList(), stage.Replay, stage.BatchSize, run.Job.Seed + stage.Index)
                : null;
            bool stop = false;
            int step = 0;
            Dictionary<string, double> Step(List<EncodedExample> batch)
            {
                var mixed = mixer?.Batch(step);
                List<EncodedExample> examples = mixed is null ? batch : [.. mixed.Items];
                var m = t.Step(examples);
                m["train/tokens"] = examples.Sum(e => e.Ids.Length);
                if (mixed is not null) m["replay/replayed"] = mixed.Replayed;
                step++;
                if (stage.EvalEvery > 0 && step % stage.EvalEvery == 0)
                {
                    double loss = t.Loss(heldOutExamples);
                    m["eval/loss"] = loss;
                    if (stage.Optimizer.Schedule == LrSchedule.Plateau) t.Optimizer.ObserveMetric(loss);
                    if (early is not null)
                    {
                        var report = early.Observe(loss, step);
                        foreach (var (k, v) in report.Stats) m[k] = v;
                        stop = report.Stop;
                    }
                }
                return m;
            }
            run.Loop(engine.TrainedExamples, Step, stop: () => stop);
            if (early is not null && early.RestoreBest())
                run.Record("after", new() { ["early_stopping/best_step"] = early.BestStep, ["early_stopping/steps"] = step });
            // A group's replicas measure nothing (and so leave probes that later stages do not measure either).
            double after = run.Measures ? t.Loss(heldOutExamples) : double.NaN;
            double? reward = prompts is null || !run.Measures ? null : RetentionProbe.Reward(run.Policy, prompts, sampling);
            run.Record("after", new() { ["eval/loss"] = after });
            if (reward is { } r) run.Record("after", new() { ["eval/reward"] = r });
            engine.Retention.Add(new RetentionProbe(stage.Name, heldOutExamples, prompts, after, reward));
        }
        finally { foreach (var p in penalties) p.Dispose(); }
        return OfflineProduct.Policy;
    }
}
