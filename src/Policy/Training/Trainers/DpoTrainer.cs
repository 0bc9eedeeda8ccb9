using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// DPO and relatives (Rafailov et al., 2023; IPO, Azar et al.; cDPO) on summed completion log-probs.
/// Reference log-probs come from the frozen reference per batch, or from a table computed once
/// (<see cref="PrecomputeReference"/>) so the reference model can be freed.
/// </summary>
public sealed class DpoTrainer : IDisposable
{
    readonly PolicyModel _policy;
    readonly IReferencePolicy _reference;
    readonly DpoOptions _o;
    Dictionary<(string, string), float>? _refTable;
    public TrainingOptimizer Optimizer { get; }

    public DpoTrainer(PolicyModel policy, IReferencePolicy reference, DpoOptions options, OptimizerOptions optimizer,
        IEnumerable<TorchSharp.Modules.Parameter>? parameters = null, MixedPrecisionModel? mixedPrecision = null)
    {
        (_policy, _reference, _o) = (policy, reference, options.Validate());
        Optimizer = new TrainingOptimizer(parameters ?? mixedPrecision?.Master.parameters() ?? policy.Model.parameters(), optimizer, mixedPrecision);
    }

    /// <summary>Computes Σ log π_ref for every (prompt, completion) of the dataset once.</summary>
    public void PrecomputeReference(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> dataset, int batchSize = 64)
    {
        _refTable = new();
        var items = dataset.SelectMany(d => new[] { (d.Prompt, d.Chosen), (d.Prompt, d.Rejected) }).Distinct().ToList();
        for (int i = 0; i < items.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = items.Skip(i).Take(batchSize).ToList();
            var sums = RefSums(chunk).cpu().data<float>().ToArray();
            for (int j = 0; j < chunk.Count; j++) _refTable[chunk[j]] = sums[j];
        }
    }

    Tensor RefSums(IReadOnlyList<(string Prompt, string Completion)> items)
    {
        var prompts = items.Select(x => _policy.EncodePrompt(x.Prompt)).ToList();
        var completions = items.Select(x => _policy.EncodeCompletion(x.Completion)).ToList();
        return _reference.LogProbs(prompts, completions).sum(1);
    }

    public Dictionary<string, double> Step(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> batch)
    {
        using var scope = NewDisposeScope();
        _policy.Model.train();
        int n = batch.Count;
        var items = batch.Select(b => (b.Prompt, b.Chosen)).Concat(batch.Select(b => (b.Prompt, b.Rejected))).ToList();
        var prompts = items.Select(x => _policy.EncodePrompt(x.Prompt)).ToList();
        var completions = items.Select(x => _policy.EncodeCompletion(x.Item2)).ToList();
        using var lp = _policy.LogProbsOf(prompts, completions);
        var sums = lp.LogProbs.sum(1);                                                  // (2B)
        Tensor refSums = _refTable is { } table
            ? tensor(items.Select(x => table.TryGetValue(x, out var v) ? v : throw new KeyNotFoundException($"no precomputed reference log-prob for a pair of prompt '{x.Prompt}'")).ToArray(), device: sums.device)
            : RefSums(items);
        var r = Losses.DpoLoss(sums.narrow(0, 0, n), sums.narrow(0, n, n), refSums.narrow(0, 0, n), refSums.narrow(0, n, n), _o.Beta, _o.LossType, _o.LabelSmoothing);
        Optimizer.Backward(r.Loss);
        return SftTrainer.Merge(r.Stats, Optimizer.Step().Stats);
    }

    public void Dispose() => Optimizer.Dispose();
}
