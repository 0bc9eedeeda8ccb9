using Rlft.Actors.Configuration;
using Rlft.Policy.Encoders;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Compute.Sessions;

/// <summary>
/// The encoder stages: each trains the stage's own encoder (<see cref="EncoderStageModel"/>) on its data and writes it to
/// <c>encoders/STAGE-NAME</c>; the policy and the job's reward model are left as they are. Held-out figures before and
/// after, on the stage's eval-data (or the last 5% of its data, then left out of training):
/// <list type="bullet">
/// <item><c>classify</c>: <c>eval/accuracy</c> (the exact label set for multi-label) and <c>eval/f1</c> (macro over labels),
/// or <c>eval/mse</c> for regression; the loss transformers picks from problem_type (<see cref="ClassifierTrainer"/>);</item>
/// <item><c>qa</c>: <c>eval/exact_match</c> and <c>eval/f1</c> (SQuAD's, over all windows of each context) after training
/// on every window (<see cref="QaTrainer"/>);</item>
/// <item><c>reward-model</c> with an encoder: <c>eval/accuracy</c> and <c>eval/margin</c> of a one-output head trained with the
/// Bradley–Terry loss (<see cref="EncoderRewardTrainer"/>).</item>
/// </list>
/// Training data is shuffled once (from the job seed), so a file sorted by label or by context still mixes in a batch.
/// </summary>
internal static class EncoderSessions
{
    public static OfflineProduct Classify(OfflineRun run)
    {
        var (stage, spec) = (run.Stage, run.Stage.Encoder!);
        var (train, heldOut) = run.Split(p => EncoderDatasets.ReadLabelled(p).Select(r => r.Item).ToList());
        IReadOnlyList<string> labels = spec.Problem == ProblemType.Regression ? ["LABEL_0"]
            : spec.Labels ?? train.Concat(heldOut).SelectMany(x => x.Label.Split(',')).Distinct().Order(StringComparer.Ordinal).ToList();
        if (spec.Problem == ProblemType.SingleLabel && labels.Count < 2)
            throw new ConfigException($"rlft.job.stages[{stage.Index}].data: every example has the label '{labels[0]}'; a single-label classifier needs two labels or more");
        using var model = EncoderStageModel.Open(run, EncoderTask.SequenceClassification, labels, spec.Problem, () => Corpus(train.Select(x => x.Pair is null ? x.Text : x.Text + "\n" + x.Pair)));
        using var t = new ClassifierTrainer(model.Text, stage.Optimizer);
        run.Record("before", Figures(t.Evaluate(heldOut), spec.Problem));
        run.Loop(Shuffled(train, run), batch =>
        {
            var step = t.Step(batch);
            return new Dictionary<string, double>(step.Optimizer.Stats) { ["loss/classify"] = step.Loss };
        });
        run.Record("after", Figures(t.Evaluate(heldOut), spec.Problem));
        run.Record("after", model.Sizes());
        model.Save(run);
        return OfflineProduct.None;
    }

    static Dictionary<string, double> Figures(ClassifierMetrics m, ProblemType problem) => problem == ProblemType.Regression
        ? new() { ["eval/mse"] = m.Mse }
        : new() { ["eval/accuracy"] = m.Accuracy, ["eval/f1"] = m.F1 };

    public static OfflineProduct Qa(OfflineRun run)
    {
        var (stage, spec) = (run.Stage, run.Stage.Encoder!);
        var (train, heldOut) = run.Split(p => EncoderDatasets.ReadQa(p).Select(r => r.Example).ToList());
        using var model = EncoderStageModel.Open(run, EncoderTask.QuestionAnswering, ["start", "end"], null, () => Corpus(train.Select(x => x.Question + "\n" + x.Context)));
        var features = QaTrainer.Features(model.Text, train, spec.Qa);
        using var t = new QaTrainer(model.Text, spec.Qa, stage.Optimizer);
        run.Record("before", Figures(t.Evaluate(heldOut)));
        run.Loop(Shuffled(features, run), t.Step);
        run.Record("after", Figures(t.Evaluate(heldOut)));
        run.Record("after", new() { ["qa/windows"] = features.Count, ["qa/examples"] = train.Count });
        run.Record("after", model.Sizes());
        model.Save(run);
        return OfflineProduct.None;
    }

    static Dictionary<string, double> Figures(QaMetrics m) => new() { ["eval/exact_match"] = m.ExactMatch, ["eval/f1"] = m.F1 };

    public static OfflineProduct RewardModel(OfflineRun run)
    {
        var (stage, spec) = (run.Stage, run.Stage.Encoder!);
        var (train, heldOut) = run.Split(p => DatasetFormats.ReadPreferences(p).Select(r => r is TextPreferenceRecord x ? (x.Prompt, x.Chosen, x.Rejected)
            : throw new DatasetException($"{r.Where}: holds a conversation; an encoder reward model reads plain-text prompt, chosen and rejected")).ToList());
        using var model = EncoderStageModel.Open(run, EncoderTask.SequenceClassification, ["LABEL_0"], null, () => Corpus(train.Select(x => $"{x.Prompt}\n{x.Chosen}\n{x.Rejected}")));
        using var t = new EncoderRewardTrainer(model.Text, stage.RewardModel, stage.Optimizer, spec.WithPrompt);
        run.Record("before", t.Evaluate(heldOut));
        run.Loop(Shuffled(train, run), t.Step);
        run.Record("after", t.Evaluate(heldOut));
        run.Record("after", model.Sizes());
        model.Save(run);
        return OfflineProduct.None;
    }

    static string Corpus(IEnumerable<string> texts) => string.Join("\n", texts);

    static List<T> Shuffled<T>(IReadOnlyList<T> items, OfflineRun run)
    {
        var rng = new Random(run.Job.Seed + 31 * run.Stage.Index);
        return items.OrderBy(_ => rng.Next()).ToList();
    }
}
