using Rlft.Policy.Chat;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// DPO and relatives (Rafailov et al., 2023; IPO, Azar et al.; cDPO) on summed completion log-probs.
/// Reference log-probs come from the frozen reference per batch, or from a table computed once
/// (<c>PrecomputeReference</c>) so the reference model can be freed.
/// </summary>
internal sealed class DpoTrainer : IDisposable
{
    readonly PolicyModel _policy;
    readonly IReferencePolicy _reference;
    readonly DpoOptions _o;
    Dictionary<string, float>? _refTable;
    public TrainingOptimizer Optimizer { get; }
    /// <summary>Penalties on the parameters added to every step's loss (L2-SP, EWC); none by default.</summary>
    public IReadOnlyList<Regularization.IParameterPenalty> Penalties { get; set; } = [];
    /// <summary>The data-parallel group this trainer steps with (solo by default): each member trains on its share of every batch.</summary>
    public Collectives.LearnerGroup Group { get => Optimizer.Group; set => Optimizer.Group = value; }

    public DpoTrainer(PolicyModel policy, IReferencePolicy reference, DpoOptions options, OptimizerOptions optimizer,
        IEnumerable<TorchSharp.Modules.Parameter>? parameters = null, MixedPrecisionModel? mixedPrecision = null)
    {
        (_policy, _reference, _o) = (policy, reference, options.Validate());
        Optimizer = new TrainingOptimizer(parameters ?? mixedPrecision?.Master.parameters() ?? policy.Model.parameters(), optimizer, mixedPrecision);
    }

    /// <summary>Plain pairs, each side encoded as one text with the prompt (completion-only loss, EOS appended).</summary>
    public List<EncodedPair> Encode(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> pairs) =>
        pairs.Select(p => new EncodedPair(_policy.Encoder.PromptCompletion(p.Prompt, p.Chosen), _policy.Encoder.PromptCompletion(p.Prompt, p.Rejected))).ToList();

    /// <summary>Computes Σ log π_ref over the loss tokens of every chosen and rejected sequence of the dataset once.</summary>
    public void PrecomputeReference(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> dataset, int batchSize = 64) =>
        PrecomputeReference(Encode(dataset), batchSize);

    public void PrecomputeReference(IReadOnlyList<EncodedPair> dataset, int batchSize = 64)
    {
        _refTable = new();
        var items = dataset.SelectMany(d => new[] { d.Chosen, d.Rejected }).DistinctBy(e => e.Key).ToList();
        for (int i = 0; i < items.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = items.Skip(i).Take(batchSize).ToList();
            var sums = RefSums(chunk).cpu().data<float>().ToArray();
            for (int j = 0; j < chunk.Count; j++) _refTable[chunk[j].Key] = sums[j];
        }
    }

    /// <summary>(N) Σ log π_ref over each example's loss tokens.</summary>
    Tensor RefSums(IReadOnlyList<EncodedExample> items)
    {
        var refLp = _reference.LogProbs(items.Select(x => x.Prompt).ToList(), items.Select(x => x.Completion).ToList());   // (N, C) end-aligned
        return (refLp * LossMask(items, refLp.shape[1], refLp.device)).sum(1);
    }

    /// <summary>(N, C) end-aligned loss mask of the examples' completions.</summary>
    static Tensor LossMask(IReadOnlyList<EncodedExample> items, long c, Device device)
    {
        var mask = new float[items.Count * c];
        for (int b = 0; b < items.Count; b++)
        {
            var m = items[b].CompletionMask;
            for (int k = 0; k < m.Length; k++) mask[b * c + c - m.Length + k] = m[k] ? 1f : 0f;
        }
        return tensor(mask, [items.Count, c], device: device);
    }

    public Dictionary<string, double> Step(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> batch) => Step(Encode(batch));

    /// <summary>
    /// One step on a batch of pairs. In a group every member is given the whole batch and trains on its share of the
    /// pairs; the loss is the (weighted) mean over the whole batch, the statistics means over all its pairs.
    /// </summary>
    public Dictionary<string, double> Step(IReadOnlyList<EncodedPair> whole)
    {
        using var scope = NewDisposeScope();
        _policy.Model.train();
        var batch = GroupShare.Of(Group, whole);
        int n = batch.Count;
        var items = batch.Select(b => b.Chosen).Concat(batch.Select(b => b.Rejected)).ToList();
        using var lp = _policy.LogProbsOf(items);
        var sums = lp.LogProbs.sum(1);                                                  // (2B)
        Tensor refSums = _refTable is { } table
            ? tensor(items.Select(x => table.TryGetValue(x.Key, out var v) ? v : throw new KeyNotFoundException("no precomputed reference log-prob for a pair of this batch")).ToArray(), device: sums.device)
            : RefSums(items);
        var (target, weight) = Labels(batch, sums.device);
        var r = Losses.DpoLoss(sums.narrow(0, 0, n), sums.narrow(0, n, n), refSums.narrow(0, 0, n), refSums.narrow(0, n, n), _o.Beta, _o.LossType, _o.LabelSmoothing, target, weight);
        // Σ w·ℓ / Σ w over the whole batch: this share's weighted mean times its part of Σ w (pair counts without weights).
        double pairShare = (double)n / whole.Count;
        double lossShare = whole.All(p => p.IsPlain) ? pairShare : batch.Sum(p => p.Weight) / whole.Sum(p => p.Weight);
        var (loss, penalties) = Regularization.Penalties.Add(GroupShare.Scale(r.Loss, lossShare), GroupShare.Penalties(Group, Penalties));
        Optimizer.Backward(loss);
        var report = Optimizer.Step();
        var stats = Group.Weighted(r.Stats.Where(s => s.Key != "loss/dpo").ToDictionary(), pairShare);
        stats["loss/dpo"] = Group.IsSolo ? r.Stats["loss/dpo"] : Group.Sum(r.Stats["loss/dpo"] * lossShare)[0];
        return SftTrainer.Merge(stats, penalties, report.Stats);
    }

    /// <summary>Per-pair soft labels and weights, (B) each, or nulls when every pair is a hard preference of weight 1.</summary>
    internal static (Tensor? Target, Tensor? Weight) Labels(IReadOnlyList<EncodedPair> batch, Device device) =>
        batch.All(p => p.IsPlain) ? (null, null)
            : (tensor(batch.Select(p => (float)p.Target).ToArray(), device: device), tensor(batch.Select(p => (float)p.Weight).ToArray(), device: device));

    /// <summary>
    /// Held-out preference figures: the share of pairs whose implicit reward β·(log π − log π_ref) is higher for
    /// the chosen side (<c>eval/accuracy</c>), and the mean margin between the two (<c>eval/margin</c>).
    /// </summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<EncodedPair> pairs, int batchSize = 32)
    {
        double correct = 0, margin = 0;
        _policy.Model.eval();
        for (int i = 0; i < pairs.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var chunk = pairs.Skip(i).Take(batchSize).ToList();
            int n = chunk.Count;
            var items = chunk.Select(b => b.Chosen).Concat(chunk.Select(b => b.Rejected)).ToList();
            using var lp = _policy.LogProbsOf(items);
            var ratio = lp.LogProbs.sum(1) - RefSums(items);                             // (2n)
            var rewards = (_o.Beta * (ratio.narrow(0, 0, n) - ratio.narrow(0, n, n))).cpu().data<float>().ToArray();   // (n) chosen − rejected
            correct += rewards.Count(r => r > 0);
            margin += rewards.Sum();
        }
        return new() { ["eval/accuracy"] = correct / pairs.Count, ["eval/margin"] = margin / pairs.Count };
    }

    public void Dispose() => Optimizer.Dispose();
}
