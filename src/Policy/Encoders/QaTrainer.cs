using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Encoders;

/// <summary>One training window: the model's input and the answer's first and last token in it ((0, 0): not in this window).</summary>
internal sealed record QaFeature(EncoderInput Input, int Start, int End);

/// <summary>Held-out question answering: SQuAD's exact match and token F1, averaged over examples.</summary>
internal sealed record QaMetrics(double ExactMatch, double F1, int Count);

/// <summary>
/// Fine-tunes an extractive question-answering encoder as transformers' run_qa does: every example is split into
/// windows (<see cref="QaSpans.Windows"/>), each window labelled with the answer's token span or with [CLS] when it
/// does not hold the whole answer, and the loss is the mean of the start and end cross-entropies
/// (BertForQuestionAnswering.forward: (CE(start) + CE(end)) / 2 over the window's positions).
/// </summary>
internal sealed class QaTrainer : IDisposable
{
    readonly EncoderTextModel _model;
    readonly QaOptions _options;
    public TrainingOptimizer Optimizer { get; }

    public QaTrainer(EncoderTextModel model, QaOptions options, OptimizerOptions optimizer)
    {
        if (model.Model.Config.Task != EncoderTask.QuestionAnswering)
            throw new ArgumentException($"{model.Model.Config.ArchitectureName} is not a question-answering model");
        (_model, _options) = (model, options);
        Optimizer = new TrainingOptimizer(model.Model.parameters(), optimizer);
    }

    /// <summary>The training windows of <paramref name="examples"/>, labelled with their first answer.</summary>
    public static List<QaFeature> Features(EncoderTextModel model, IEnumerable<QaExample> examples, QaOptions options)
    {
        var features = new List<QaFeature>();
        foreach (var x in examples)
        {
            int start = x.AnswerStarts[0], end = start + x.Answers[0].Length;
            foreach (var w in QaSpans.Windows(model.Tokenizer, x.Question, x.Context, Math.Min(options.MaxLength, model.MaxLength), options.Stride, options.MaxQueryLength))
            {
                var (s, e) = QaSpans.Label(w, start, end);
                features.Add(new QaFeature(w.Input, s, e));
            }
        }
        return features;
    }

    /// <summary>logits (B, T, 2) and token positions (B) → (CE(start) + CE(end)) / 2, each the batch mean.</summary>
    public static Tensor Loss(Tensor logits, Tensor starts, Tensor ends)
    {
        var start = logits.select(-1, 0);                                          // (B, T)
        var end = logits.select(-1, 1);                                            // (B, T)
        return (F.cross_entropy(start, starts) + F.cross_entropy(end, ends)) / 2;
    }

    /// <summary>One forward, backward and optimiser step on a batch of windows.</summary>
    public Dictionary<string, double> Step(IReadOnlyList<QaFeature> batch)
    {
        using var scope = NewDisposeScope();
        _model.Model.train();
        using var output = _model.Forward(batch.Select(f => f.Input).ToList());
        var device = _model.Model.Device;
        var loss = Loss(output.Logits, tensor(batch.Select(f => (long)f.Start).ToArray()).to(device), tensor(batch.Select(f => (long)f.End).ToArray()).to(device));
        double value = loss.item<float>();
        Optimizer.Backward(loss);
        var report = Optimizer.Step();
        _model.Model.eval();
        return new Dictionary<string, double>(report.Stats) { ["loss/qa"] = value };
    }

    /// <summary>Exact match and F1 of the best span over each example's windows (no gradients).</summary>
    public QaMetrics Evaluate(IReadOnlyList<QaExample> data)
    {
        double em = 0, f1 = 0;
        foreach (var x in data)
        {
            string answer = _model.Answer(x.Question, x.Context, _options)?.Text ?? "";
            em += QaSpans.ExactMatch(answer, x.Answers);
            f1 += QaSpans.F1(answer, x.Answers);
        }
        return data.Count == 0 ? new QaMetrics(double.NaN, double.NaN, 0) : new QaMetrics(em / data.Count, f1 / data.Count, data.Count);
    }

    public void Dispose() => Optimizer.Dispose();
}
