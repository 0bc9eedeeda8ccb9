using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>Supervised fine-tuning: next-token loss on completion tokens only (prompt tokens masked out).</summary>
public sealed class SftTrainer : IDisposable
{
    readonly PolicyModel _policy;
    public TrainingOptimizer Optimizer { get; }

    /// <param name="mixedPrecision">bf16 compute: <paramref name="policy"/> wraps its compute copy; the master weights train.</param>
    public SftTrainer(PolicyModel policy, OptimizerOptions options, IEnumerable<TorchSharp.Modules.Parameter>? trainable = null, MixedPrecisionModel? mixedPrecision = null)
    {
        _policy = policy;
        Optimizer = new TrainingOptimizer(trainable ?? mixedPrecision?.Master.parameters() ?? policy.Model.parameters(), options, mixedPrecision);
    }

    /// <summary>One micro-batch: forward, backward, and an optimizer step when the accumulation window closes.</summary>
    public Dictionary<string, double> Step(IReadOnlyList<(string Prompt, string Completion)> batch)
    {
        using var scope = NewDisposeScope();
        _policy.Model.train();
        var prompts = batch.Select(b => _policy.EncodePrompt(b.Prompt)).ToList();
        var completions = batch.Select(b => _policy.EncodeCompletion(b.Completion)).ToList();
        using var lp = _policy.LogProbsOf(prompts, completions);
        var result = Losses.SftLoss(lp.LogProbs, lp.Mask);
        Optimizer.Backward(result.Loss);
        var report = Optimizer.Step();
        return Merge(result.Stats, report.Stats);
    }

    /// <summary>Mean completion loss without updating (held-out evaluation).</summary>
    public double Loss(IReadOnlyList<(string Prompt, string Completion)> batch)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        _policy.Model.eval();
        var prompts = batch.Select(b => _policy.EncodePrompt(b.Prompt)).ToList();
        var completions = batch.Select(b => _policy.EncodeCompletion(b.Completion)).ToList();
        using var lp = _policy.LogProbsOf(prompts, completions);
        return Losses.SftLoss(lp.LogProbs, lp.Mask).Stats["loss/sft"];
    }

    internal static Dictionary<string, double> Merge(params IReadOnlyDictionary<string, double>[] parts)
    {
        var all = new Dictionary<string, double>();
        foreach (var p in parts) foreach (var (k, v) in p) all[k] = v;
        return all;
    }

    public void Dispose() => Optimizer.Dispose();
}
