using Rlft.Policy.Checkpoints;
using Rlft.Policy.Encoders;
using static TorchSharp.torch;

namespace Rlft.Reward.Sources;

/// <summary>What a classifier's output for the chosen label becomes as a reward.</summary>
public enum ClassifierScore
{
    /// <summary>The label's raw logit (TRL's sentiment example: the POSITIVE logit of a DistilBERT/BERT classifier).</summary>
    Logit,
    /// <summary>The label's probability: softmax over the labels, or the sigmoid of its logit for a multi-label head.</summary>
    Probability,
    /// <summary>The label's logit minus the largest other logit (positive when the classifier picks the label).</summary>
    Margin,
}

/// <summary>A classifier source: an encoder checkpoint, the label it rewards, and what of its output is the reward.</summary>
public sealed record ClassifierSpec(string Model, string Label, ClassifierScore Score = ClassifierScore.Logit, bool WithPrompt = false, int MaxBatch = 32, int MaxLength = 512) : SourceSpec
{
    public override string Kind => "classifier";

    /// <summary>
    /// The problems of this spec's model and label (empty when usable), each starting with its key (<c>model: …</c>),
    /// found from config.json and the tensors' shapes without loading weights.
    /// </summary>
    public List<string> Check()
    {
        var problems = ModelDirectory.CheckEncoder(Model, out var config, exactHead: true).Select(p => "model: " + p).ToList();
        if (config is null) return problems;
        if (config.Task != EncoderTask.SequenceClassification)
            problems.Insert(0, $"model: {Model} is a {config.ArchitectureName}; a classifier source needs a *ForSequenceClassification model");
        else if (config.EffectiveProblem == ProblemType.Regression)
        {
            if (Score != ClassifierScore.Logit) problems.Add($"score: a regression head has one output; only score = logit applies");
        }
        else if (ClassifierRewardSource.LabelIndex(config, Label) < 0)
            problems.Add($"label: '{Label}' is not a label of {Model} (labels: {string.Join(", ", config.Labels)}; or an index below {config.NumLabels})");
        return problems;
    }
}

/// <summary>
/// Scores completions with an encoder sequence classifier (BERT, RoBERTa, DistilBERT): the classic RLHF reward of a
/// sentiment classifier's positive logit, or any label's probability or margin. By default only the completion is
/// classified; with <see cref="ClassifierSpec.WithPrompt"/> the prompt is the first text and the completion the pair.
/// Texts longer than the model's positions are truncated. Runs on the CPU, in batches of <see cref="ClassifierSpec.MaxBatch"/>.
/// </summary>
public sealed class ClassifierRewardSource : IRewardSource, IDisposable
{
    readonly ClassifierSpec _spec;
    readonly EncoderTextModel _model;
    readonly int _label;
    readonly SemaphoreSlim _gate = new(1, 1);

    public string Name { get; }

    public ClassifierRewardSource(string name, ClassifierSpec spec)
    {
        if (spec.Check() is { Count: > 0 } problems) throw new ArgumentException(string.Join("; ", problems));
        (Name, _spec) = (name, spec);
        _model = EncoderTextModel.Load(spec.Model, maxLength: spec.MaxLength);
        _model.Model.eval();
        _label = _model.Model.Config.EffectiveProblem == ProblemType.Regression ? 0 : LabelIndex(_model.Model.Config, spec.Label);
    }

    /// <summary>The index of <paramref name="label"/> by name (id2label), or as a number; -1 when neither.</summary>
    internal static int LabelIndex(EncoderConfig config, string label)
    {
        for (int i = 0; i < config.Labels.Count; i++) if (config.Labels[i] == label) return i;
        return int.TryParse(label, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n < config.NumLabels ? n : -1;
    }

    public async Task<SourceScores> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct)
    {
        // One model, one caller at a time: batches of several reward actors in a process queue here.
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var items = batch.Select(s => _spec.WithPrompt ? (s.Prompt, (string?)s.Completion) : (s.Completion, null)).ToList();
            var logits = _model.Logits(items, _spec.MaxBatch);
            return new SourceScores(Name, logits.Select(l => Score(l)).ToList());
        }
        finally { _gate.Release(); }
    }

    SampleScore Score(float[] logits)
    {
        double value = _spec.Score switch
        {
            ClassifierScore.Logit => logits[_label],
            ClassifierScore.Probability => Probability(logits),
            _ => logits[_label] - logits.Where((_, i) => i != _label).Max(),
        };
        return double.IsFinite(value) ? SampleScore.Ok(value) : SampleScore.Fail($"classifier gave a non-finite score ({value})");
    }

    double Probability(float[] logits)
    {
        if (_model.Model.Config.EffectiveProblem == ProblemType.MultiLabel) return 1 / (1 + Math.Exp(-logits[_label]));
        double max = logits.Max();
        return Math.Exp(logits[_label] - max) / logits.Sum(l => Math.Exp(l - max));
    }

    public void Dispose() { _model.Dispose(); _gate.Dispose(); }
}
