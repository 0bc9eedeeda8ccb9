using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using static TorchSharp.torch;

namespace Rlft.Policy.Encoders;

/// <summary>
/// Bradley–Terry training of an encoder reward model: a sequence classifier with one output (num_labels = 1, TRL's
/// RewardTrainer on AutoModelForSequenceClassification) whose logit is the reward. A pair's loss is
/// −log σ(r_chosen − r_rejected − margin), plus center-rewards-coef · (r_chosen + r_rejected)² when set. The model reads
/// the prompt as the text and the completion as text_pair (<paramref name="withPrompt"/>), or the completion alone;
/// the classifier reward source must read it the same way (its <c>text</c> key).
/// </summary>
internal sealed class EncoderRewardTrainer(EncoderTextModel model, RewardModelOptions options, OptimizerOptions optimizer, bool withPrompt) : IDisposable
{
    readonly RewardModelOptions _options = options.Validate();
    public TrainingOptimizer Optimizer { get; } = new(Checked(model).Model.parameters(), optimizer);

    static EncoderTextModel Checked(EncoderTextModel model) =>
        model.Model.Config is { Task: EncoderTask.SequenceClassification, NumLabels: 1 } ? model
            : throw new ArgumentException($"an encoder reward model is a sequence classifier with one label; this is a {model.Model.Config.ArchitectureName} with {model.Model.Config.NumLabels}");

    EncoderInput Encode(string prompt, string completion) => withPrompt ? model.Encode(prompt, completion) : model.Encode(completion);

    /// <summary>Rewards (B) of (prompt, completion) pairs; differentiable.</summary>
    public Tensor Scores(IReadOnlyList<(string Prompt, string Completion)> items)
    {
        using var output = model.Forward(items.Select(x => Encode(x.Prompt, x.Completion)).ToList());
        return output.Logits.select(-1, 0).clone();                                   // (B)
    }

    public Dictionary<string, double> Step(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> batch)
    {
        using var scope = NewDisposeScope();
        model.Model.train();
        // Chosen and rejected in one forward: [c0..cn, r0..rn].
        var scores = Scores(batch.Select(b => (b.Prompt, b.Chosen)).Concat(batch.Select(b => (b.Prompt, b.Rejected))).ToList());
        var chosen = scores.narrow(0, 0, batch.Count);
        var rejected = scores.narrow(0, batch.Count, batch.Count);
        var margin = _options.Margin > 0 ? full(batch.Count, _options.Margin, device: scores.device) : null;
        var result = Losses.RewardModelLoss(chosen, rejected, margin);
        var loss = result.Loss;
        if (_options.CenterRewardsCoef > 0) loss = loss + _options.CenterRewardsCoef * (chosen + rejected).square().mean();
        Optimizer.Backward(loss);
        var stats = new Dictionary<string, double>(result.Stats);
        foreach (var (k, v) in Optimizer.Step().Stats) stats[k] = v;
        model.Model.eval();
        return stats;
    }

    /// <summary>Held-out <c>eval/accuracy</c> (r_chosen &gt; r_rejected) and <c>eval/margin</c> (mean r_chosen − r_rejected).</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> pairs, int batchSize = 64)
    {
        using var _ = no_grad();
        var diffs = new List<double>(pairs.Count);
        for (int i = 0; i < pairs.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = pairs.Skip(i).Take(batchSize).ToList();
            var s = Scores(chunk.Select(b => (b.Prompt, b.Chosen)).Concat(chunk.Select(b => (b.Prompt, b.Rejected))).ToList()).cpu().data<float>().ToArray();
            for (int k = 0; k < chunk.Count; k++) diffs.Add(s[k] - (double)s[chunk.Count + k]);
        }
        return new Dictionary<string, double>
        {
            ["eval/accuracy"] = diffs.Count(d => d > 0) / (double)Math.Max(1, diffs.Count),
            ["eval/margin"] = diffs.DefaultIfEmpty(0).Average(),
        };
    }

    public void Dispose() => Optimizer.Dispose();
}
