using Rlft.Policy.Generation;
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
        // The first epoch trains at the weights log π_old is taken at. Where a training-mode pass computes what an
        // eval-mode pass does (no adapter dropout), that pass's log-probs, detached, are log π_old, and one forward pass
        // of the policy is saved (TRL does the same with one iteration per batch). Otherwise a separate eval-mode pass.
        bool reuse = _o.ReuseBehaviourPass && _policy.TrainsDeterministically;
        if (reuse) _policy.Model.train(); else _policy.Model.eval();
        Tensor logpOld, logRef, mask;
        using (no_grad()) logRef = _reference.LogProbs(prompts, completions);   // first: the training pass's activations are not held yet
        CompletionLogProbs? first = reuse ? _policy.LogProbsOf(prompts, completions) : null;
        using (no_grad())
        {
            using var own = reuse ? null : _policy.LogProbsOf(prompts, completions);
            var lp = first ?? own!;
            (logpOld, mask) = (lp.LogProbs.detach().clone(), lp.Mask.detach().clone());
        }
        double weight = GroupShare.TokenWeight(Group, mask);
        adv = adv.to(logpOld.device);
        _policy.Model.train();
        var sums = new Dictionary<string, double>();
        for (int epoch = 0; epoch < _o.Epochs; epoch++)
        {
            using var epochScope = NewDisposeScope();
            using var lp = epoch == 0 && first is not null ? first : _policy.LogProbsOf(prompts, completions);
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
