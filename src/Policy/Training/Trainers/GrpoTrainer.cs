using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// GRPO (Shao et al., 2024): G samples per prompt, advantages normalised within each group, the clipped
/// surrogate, and a k3 KL penalty to the reference inside the loss. No value model.
/// Experience must come grouped: consecutive runs of <see cref="GrpoOptions.GroupSize"/> samples.
/// </summary>
internal sealed class GrpoTrainer : IDisposable
{
    readonly PolicyModel _policy;
    readonly IReferencePolicy _reference;
    readonly GrpoOptions _o;
    public TrainingOptimizer Optimizer { get; }
    /// <summary>The data-parallel group this trainer steps with (solo by default): each member trains on whole GRPO groups of every batch.</summary>
    public Collectives.LearnerGroup Group { get => Optimizer.Group; set => Optimizer.Group = value; }

    public GrpoTrainer(PolicyModel policy, IReferencePolicy reference, GrpoOptions options, OptimizerOptions optimizer,
        IEnumerable<TorchSharp.Modules.Parameter>? parameters = null, MixedPrecisionModel? mixedPrecision = null)
    {
        (_policy, _reference, _o) = (policy, reference, options.Validate());
        Optimizer = new TrainingOptimizer(parameters ?? mixedPrecision?.Master.parameters() ?? policy.Model.parameters(), optimizer, mixedPrecision);
    }

    /// <summary>
    /// One GRPO step. In a group every member is given the whole batch and trains on its share of whole GRPO groups
    /// (a group's advantages need all of it); the loss is the token mean over the whole batch.
    /// </summary>
    public Dictionary<string, double> Step(IReadOnlyList<Experience> whole)
    {
        using var scope = NewDisposeScope();
        int eos = _policy.Tokenizer.EosId;
        var scores = tensor(whole.Select(e => e.Score).ToArray());
        var (start, count) = Group.IsSolo ? (0, whole.Count) : Group.Share(whole.Count, _o.GroupSize);
        var batch = whole.Skip(start).Take(count).ToList();
        var prompts = batch.Select(e => e.PromptTokens).ToList();
        var completions = batch.Select(e => ExperienceTensors.NonEmpty(e.CompletionTokens, eos)).ToList();
        var adv = Advantages.GroupNormalized(scores, _o.GroupSize, scale: _o.ScaleRewards).narrow(0, start, count);  // (b) of (B)
        Tensor logpOld, logRef;
        double weight;
        using (no_grad())
        {
            _policy.Model.eval();
            using var lp = _policy.LogProbsOf(prompts, completions);
            logpOld = lp.LogProbs.detach().clone();
            logRef = _reference.LogProbs(prompts, completions);
            weight = GroupShare.TokenWeight(Group, lp.Mask);
        }
        adv = adv.to(logpOld.device);
        _policy.Model.train();
        var sums = new Dictionary<string, double>();
        for (int epoch = 0; epoch < _o.Epochs; epoch++)
        {
            using var epochScope = NewDisposeScope();
            using var lp = _policy.LogProbsOf(prompts, completions);
            var r = Losses.GrpoLoss(lp.LogProbs, logpOld, logRef, adv, lp.Mask, _o.ClipLow, _o.ClipHigh, _o.KlCoef);
            Optimizer.Backward(GroupShare.Scale(r.Loss, weight));
            var report = Optimizer.Step();
            foreach (var (k, v) in Group.Weighted(r.Stats, weight).Concat(report.Stats)) sums[k] = sums.GetValueOrDefault(k) + v / _o.Epochs;
        }
        sums["reward/mean"] = scores.mean().ToDouble();
        sums["reward/std"] = scores.std().ToDouble();
        sums["response/length"] = whole.Average(e => ExperienceTensors.NonEmpty(e.CompletionTokens, eos).Length);
        return sums;
    }

    public void Dispose() => Optimizer.Dispose();
}
