using Rlft.Policy.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Encoders;

/// <summary>What one classifier update did: the loss and the optimiser's report.</summary>
internal sealed record ClassifierStep(double Loss, StepReport Optimizer);

/// <summary>Held-out metrics: accuracy (exact label set for multi-label), macro F1 over labels, MSE for regression.</summary>
internal sealed record ClassifierMetrics(double Accuracy, double F1, double Mse, int Count);

/// <summary>
/// Fine-tunes a sequence-classification encoder on labelled texts with the loss transformers picks from
/// <c>problem_type</c> (BertForSequenceClassification.forward): regression → MSE on the single logit; single-label →
/// cross-entropy over the labels; multi-label → binary cross-entropy with logits, one target per label.
/// </summary>
internal sealed class ClassifierTrainer : IDisposable
{
    readonly EncoderTextModel _model;
    readonly TrainingOptimizer _optimizer;
    readonly Dictionary<string, int> _labelIds;

    public ClassifierTrainer(EncoderTextModel model, OptimizerOptions options)
    {
        if (model.Model.Config.Task != EncoderTask.SequenceClassification)
            throw new ArgumentException($"{model.Model.Config.ArchitectureName} is not a sequence classifier");
        _model = model;
        _labelIds = model.Model.Config.Labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i);
        _optimizer = new TrainingOptimizer(model.Model.parameters(), options);
    }

    /// <summary>
    /// The loss of (B, L) logits. Targets: single-label — label ids (B) int64; multi-label — (B, L) 0/1 floats;
    /// regression — (B) or (B, 1) floats.
    /// </summary>
    public static Tensor Loss(Tensor logits, Tensor targets, ProblemType problem) => problem switch
    {
        ProblemType.Regression => F.mse_loss(logits.squeeze(-1), targets.view(-1).to(logits.dtype)),                      // mean (ŷ − y)²
        ProblemType.MultiLabel => F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype)),                   // mean over B·L
        _ => F.cross_entropy(logits, targets),                                                                              // mean −log softmax(ŷ)_y
    };

    /// <summary>The targets of <paramref name="batch"/> as <see cref="Loss"/> takes them; labels named as in id2label.</summary>
    public Tensor Targets(IReadOnlyList<LabelledText> batch)
    {
        var config = _model.Model.Config;
        int Id(string label) => _labelIds.TryGetValue(label, out int id) ? id
            : throw new ArgumentException($"label '{label}' is not one of the model's labels ({string.Join(", ", config.Labels)})");
        var device = _model.Model.Device;
        switch (config.EffectiveProblem)
        {
            case ProblemType.Regression:
                return tensor(batch.Select(x => float.Parse(x.Label, System.Globalization.CultureInfo.InvariantCulture)).ToArray()).to(device);
            case ProblemType.MultiLabel:
                var multi = new float[batch.Count * config.NumLabels];
                for (int b = 0; b < batch.Count; b++)
                    foreach (var l in batch[b].Label.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) multi[b * config.NumLabels + Id(l)] = 1;
                return tensor(multi, [batch.Count, config.NumLabels]).to(device);
            default:
                return tensor(batch.Select(x => (long)Id(x.Label)).ToArray()).to(device);
        }
    }

    /// <summary>One forward, backward and optimiser step on <paramref name="batch"/>.</summary>
    public ClassifierStep Step(IReadOnlyList<LabelledText> batch)
    {
        using var scope = NewDisposeScope();
        _model.Model.train();
        using var output = _model.Forward(batch.Select(x => _model.Encode(x.Text, x.Pair)).ToList());
        var loss = Loss(output.Logits, Targets(batch), _model.Model.Config.EffectiveProblem);
        double value = loss.item<float>();
        _optimizer.Backward(loss);
        var report = _optimizer.Step();
        _model.Model.eval();
        return new ClassifierStep(value, report);
    }

    /// <summary>Metrics over <paramref name="data"/> (no gradients).</summary>
    public ClassifierMetrics Evaluate(IReadOnlyList<LabelledText> data, int batchSize = 64)
    {
        var config = _model.Model.Config;
        var logits = _model.Logits(data.Select(x => (x.Text, x.Pair)).ToList(), batchSize);
        if (config.EffectiveProblem == ProblemType.Regression)
        {
            double mse = data.Select((x, i) => Math.Pow(logits[i][0] - double.Parse(x.Label, System.Globalization.CultureInfo.InvariantCulture), 2)).Average();
            return new ClassifierMetrics(double.NaN, double.NaN, mse, data.Count);
        }
        int labels = config.NumLabels;
        var predicted = logits.Select(l => config.EffectiveProblem == ProblemType.MultiLabel
            ? Enumerable.Range(0, labels).Where(k => l[k] > 0).ToHashSet()
            : [Array.IndexOf(l, l.Max())]).ToList();
        var gold = data.Select(x => x.Label.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(l => _labelIds[l]).ToHashSet()).ToList();
        double accuracy = predicted.Zip(gold, (p, g) => p.SetEquals(g) ? 1.0 : 0.0).Average();
        double f1 = Enumerable.Range(0, labels).Select(k =>
        {
            int tp = 0, fp = 0, fn = 0;
            for (int i = 0; i < data.Count; i++)
            {
                bool p = predicted[i].Contains(k), g = gold[i].Contains(k);
                if (p && g) tp++; else if (p) fp++; else if (g) fn++;
            }
            return tp == 0 ? 0.0 : 2.0 * tp / (2 * tp + fp + fn);
        }).Average();
        return new ClassifierMetrics(accuracy, f1, double.NaN, data.Count);
    }

    public void Dispose() => _optimizer.Dispose();
}
