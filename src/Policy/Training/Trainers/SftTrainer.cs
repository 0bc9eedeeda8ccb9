using Rlft.Policy.Chat;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// Supervised fine-tuning: next-token loss on the loss-carrying tokens only — the completion of a prompt/completion
/// pair, or every assistant turn of a conversation (see <see cref="ExampleEncoder"/>); prompt tokens are masked out.
/// </summary>
internal sealed class SftTrainer : IDisposable
{
    readonly PolicyModel _policy;
    public TrainingOptimizer Optimizer { get; }
    /// <summary>Penalties on the parameters added to every step's loss (L2-SP, EWC); none by default.</summary>
    public IReadOnlyList<Regularization.IParameterPenalty> Penalties { get; set; } = [];
    /// <summary>The data-parallel group this trainer steps with (solo by default): each member trains on its share of every batch.</summary>
    public Collectives.LearnerGroup Group { get => Optimizer.Group; set => Optimizer.Group = value; }

    /// <param name="mixedPrecision">bf16 compute: <paramref name="policy"/> wraps its compute copy; the master weights train.</param>
    public SftTrainer(PolicyModel policy, OptimizerOptions options, IEnumerable<TorchSharp.Modules.Parameter>? trainable = null, MixedPrecisionModel? mixedPrecision = null)
    {
        _policy = policy;
        Optimizer = new TrainingOptimizer(trainable ?? mixedPrecision?.Master.parameters() ?? policy.Model.parameters(), options, mixedPrecision);
    }

    /// <summary>One micro-batch of plain (prompt, completion) pairs, each encoded as one text with completion-only loss.</summary>
    public Dictionary<string, double> Step(IReadOnlyList<(string Prompt, string Completion)> batch) => Step(Encode(batch));

    /// <summary>
    /// One micro-batch: forward, backward, and an optimizer step when the accumulation window closes. In a group every
    /// member is given the whole batch and trains on its share; the loss is the token mean over the whole batch.
    /// </summary>
    public Dictionary<string, double> Step(IReadOnlyList<EncodedExample> batch)
    {
        using var scope = NewDisposeScope();
        _policy.Model.train();
        using var lp = _policy.LogProbsOf(GroupShare.Of(Group, batch));
        var result = Losses.SftLoss(lp.LogProbs, lp.Mask);
        double weight = GroupShare.TokenWeight(Group, lp.Mask);
        var (loss, penalties) = Regularization.Penalties.Add(GroupShare.Scale(result.Loss, weight), GroupShare.Penalties(Group, Penalties));
        Optimizer.Backward(loss);
        var report = Optimizer.Step();
        var stats = Group.Weighted(result.Stats.Where(s => s.Key != "sft/tokens").ToDictionary(), weight);
        stats["sft/tokens"] = Group.IsSolo ? result.Stats["sft/tokens"] : Group.Sum(result.Stats["sft/tokens"])[0];
        stats["sft/perplexity"] = Math.Exp(stats["loss/sft"]);
        return Merge(stats, penalties, report.Stats);
    }

    /// <summary>Mean loss over the loss-carrying tokens, without updating (held-out evaluation).</summary>
    public double Loss(IReadOnlyList<(string Prompt, string Completion)> batch) => Loss(Encode(batch));

    public double Loss(IReadOnlyList<EncodedExample> examples) => Loss(_policy, examples, EvalBatchSize);

    /// <summary>
    /// Examples per forward pass of a held-out evaluation (<see cref="Loss(IReadOnlyList{EncodedExample})"/>): a stage
    /// sets its batch size, so that evaluating holds no more than a training step does (32 unless set).
    /// </summary>
    public int EvalBatchSize { get; init; } = 32;

    /// <summary>
    /// Mean loss of <paramref name="policy"/> over the loss-carrying tokens of <paramref name="examples"/> (no gradients;
    /// eval mode), <paramref name="batchSize"/> examples per forward pass: the token-weighted mean over all of them,
    /// the same figure one pass over every example gives.
    /// </summary>
    public static double Loss(PolicyModel policy, IReadOnlyList<EncodedExample> examples, int batchSize = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        using var _ = no_grad();
        policy.Model.eval();
        double sum = 0, tokens = 0;
        for (int i = 0; i < examples.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            using var lp = policy.LogProbsOf(examples.Skip(i).Take(batchSize).ToList());
            sum += (lp.LogProbs * lp.Mask).sum().ToDouble();
            tokens += lp.Mask.sum().ToDouble();
        }
        return tokens > 0 ? -sum / tokens : 0;
    }

    List<EncodedExample> Encode(IReadOnlyList<(string Prompt, string Completion)> batch) =>
        batch.Select(b => _policy.Encoder.PromptCompletion(b.Prompt, b.Completion)).ToList();

    internal static Dictionary<string, double> Merge(params IReadOnlyDictionary<string, double>[] parts)
    {
        var all = new Dictionary<string, double>();
        foreach (var p in parts) foreach (var (k, v) in p) all[k] = v;
        return all;
    }

    public void Dispose() => Optimizer.Dispose();
}
