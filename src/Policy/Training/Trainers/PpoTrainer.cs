using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// PPO for language models (Ouyang et al., 2022; TRL/OpenRLHF structure): per-token KL shaping against
/// the frozen reference with the score at the last token, GAE, whitened advantages, clipped policy and
/// value losses, several epochs over minibatches, and a fixed or adaptive KL coefficient. Behaviour
/// log-probs are recomputed here (the field's practice) and their mismatch with the sampler's reported; with one
/// minibatch they come from the first update's own forward pass (see <see cref="Step"/>).
/// </summary>
internal sealed class PpoTrainer : IDisposable
{
    readonly PolicyModel _policy;
    readonly ValueHead _value;
    readonly IReferencePolicy _reference;
    readonly PpoOptions _o;
    readonly Generator _shuffle;
    /// <summary>The RNG that orders minibatches (its state is part of a checkpoint, for exact resume).</summary>
    public Generator ShuffleGenerator => _shuffle;
    public TrainingOptimizer Optimizer { get; }
    public IKlController Kl { get; }
    /// <summary>The data-parallel group this trainer steps with (solo by default): each member trains on its share of every minibatch.</summary>
    public Collectives.LearnerGroup Group { get => Optimizer.Group; set => Optimizer.Group = value; }

    public PpoTrainer(PolicyModel policy, ValueHead value, IReferencePolicy reference, PpoOptions options, OptimizerOptions optimizer,
        IEnumerable<TorchSharp.Modules.Parameter>? policyParameters = null, long seed = 0, MixedPrecisionModel? mixedPrecision = null)
    {
        (_policy, _value, _reference, _o) = (policy, value, reference, options.Validate());
        Optimizer = new TrainingOptimizer((policyParameters ?? mixedPrecision?.Master.parameters() ?? policy.Model.parameters()).Concat(value.parameters()), optimizer, mixedPrecision);
        Kl = options.AdaptiveKl ? new AdaptiveKlController(options.KlCoef, options.KlTarget, options.KlHorizon) : new FixedKlController(options.KlCoef);
        _shuffle = new Generator((ulong)seed);
    }

    /// <summary>
    /// One PPO step on a batch of experience. In a group every member is given the whole batch: it computes the
    /// behaviour quantities of its share of the rows and the group gathers them, so advantages are whitened with the
    /// whole batch's mean and variance and the KL controller sees the whole batch; then every member walks the same
    /// shuffled global minibatches and trains on its slice of each, its loss weighted by its share of the tokens.
    /// </summary>
    public Dictionary<string, double> Step(IReadOnlyList<Experience> batch)
    {
        using var scope = NewDisposeScope();
        int eos = _policy.Tokenizer.EosId;
        var prompts = batch.Select(e => e.PromptTokens).ToList();
        var completions = batch.Select(e => ExperienceTensors.NonEmpty(e.CompletionTokens, eos)).ToList();
        int B = batch.Count, C = completions.Max(c => c.Length);
        var stats = new Dictionary<string, double>();
        var (lo, b) = Group.IsSolo ? (0, B) : Group.Share(B);

        // 1. Behaviour quantities under the current weights (no gradient): log π_old, V_old, log π_ref. With one
        // minibatch, the first update trains at these weights on the whole batch: where a training-mode pass computes what
        // an eval-mode pass does (no adapter dropout), that pass gives them, detached, and one forward pass of the policy
        // is saved. Otherwise (several minibatches, a learner group, dropout) a separate eval-mode pass.
        bool reuse = _o.ReuseBehaviourPass && _o.MiniBatches == 1 && Group.IsSolo && _policy.TrainsDeterministically;
        if (reuse) _policy.Model.train(); else _policy.Model.eval();
        var (myPrompts, myCompletions) = (prompts.Skip(lo).Take(b).ToList(), completions.Skip(lo).Take(b).ToList());
        Tensor logRefLocal;
        using (no_grad()) logRefLocal = _reference.LogProbs(myPrompts, myCompletions);    // first: the training pass's activations are not held yet
        CompletionLogProbs? first = reuse ? _policy.LogProbsOf(prompts, completions, entropy: true) : null;
        Tensor logpOld, valuesOld, logRef, mask, advantages, returns, kl;
        double beta = Kl.Value;
        using (no_grad())
        {
            using var own = reuse ? null : _policy.LogProbsOf(myPrompts, myCompletions, entropy: _o.EntropyCoef == 0);
            var lp = first ?? own!;
            var local = new List<Tensor>
            {
                lp.LogProbs.detach().clone(),                                                  // (b, c) log π_old
                lp.Mask.detach().clone(),                                                      // (b, c)
            };
            local.Add((_value.forward(PolicyModel.CompletionHidden(lp).detach().to(ScalarType.Float32)) * local[1]).detach()); // (b, c) V_old
            local.Add(logRefLocal * local[1]);                                                 // (b, c) log π_ref
            if (_o.EntropyCoef == 0) local.Add(lp.Entropy!.detach());                          // (b, c)
            var all = Gather(local, B, C, lo);                                                 // each (B, C)
            (logpOld, mask, valuesOld, logRef) = (all[0], all[1], all[2], all[3]);
            var sampler = tensor(ExperienceTensors.EndAligned(batch.Select(e => e.SamplerLogprobs).ToList(), C), [B, C], device: mask.device);
            stats["rollout/logprob_mismatch"] = Masked.Mean((sampler - logpOld).abs(), mask).ToDouble();
            if (_o.EntropyCoef == 0) stats["objective/entropy"] = Masked.Mean(all[4], mask).ToDouble();

            var scores = tensor(batch.Select(e => e.Score).ToArray(), device: mask.device).clamp(-_o.RewardClip, _o.RewardClip); // (B)
            Tensor rewards;
            (rewards, kl) = Advantages.ShapeRewards(logpOld, logRef, scores, mask, beta, _o.KlEstimator);
            (advantages, returns) = Advantages.Gae(rewards, valuesOld, mask, _o.Gamma, _o.Lambda);
            if (_o.WhitenAdvantages) advantages = Masked.Whiten(advantages, mask);
            stats["reward/mean"] = scores.mean().ToDouble();
            stats["reward/std"] = B > 1 ? scores.std().ToDouble() : 0;
            stats["objective/kl"] = kl.sum(1).mean().ToDouble();                            // nats per sequence
            stats["objective/non_score_reward"] = (-beta * kl).sum(1).mean().ToDouble();
            stats["response/length"] = mask.sum(1).mean().ToDouble();
        }

        // 2. Epochs over shuffled minibatches: the same global minibatches on every member, each training on its slice.
        _policy.Model.train();
        var sums = new Dictionary<string, double>();      // loss statistics, each weighted by this member's token share
        var optimizer = new Dictionary<string, double>(); // the optimizer's report: the same on every member
        int updates = 0;
        int mbSize = Math.Max(1, B / _o.MiniBatches);
        for (int epoch = 0; epoch < _o.Epochs; epoch++)
        {
            var order = randperm(B, generator: _shuffle).data<long>().ToArray();
            for (int start = 0; start < B; start += mbSize)
            {
                using var mbScope = NewDisposeScope();
                // The pass kept from step 1 holds the batch in its own order; the loss is a mean over all its tokens.
                bool kept = epoch == 0 && start == 0 && first is not null;
                var global = kept ? Enumerable.Range(0, B).ToArray() : order.Skip(start).Take(mbSize).Select(i => (int)i).ToArray();
                var (from, count) = Group.IsSolo ? (0, global.Length) : Group.Share(global.Length);
                var idx = global.Skip(from).Take(count).ToArray();
                var mbCompletions = idx.Select(i => completions[i]).ToList();
                int c = mbCompletions.Max(x => x.Length);
                var rows = tensor(idx.Select(i => (long)i).ToArray(), device: mask.device);
                Tensor Cut(Tensor full) => full.index_select(0, rows).narrow(1, C - c, c);   // end-aligned columns
                using var lp = kept ? first! : _policy.LogProbsOf(idx.Select(i => prompts[i]).ToList(), mbCompletions, entropy: _o.EntropyCoef > 0);
                var mbMask = Cut(mask);
                double weight = Group.IsSolo ? 1 : mbMask.sum().ToDouble() / Math.Max(1, mask.index_select(0, tensor(global.Select(i => (long)i).ToArray(), device: mask.device)).sum().ToDouble());
                var values = _value.forward(PolicyModel.CompletionHidden(lp).to(ScalarType.Float32));               // (b, c)
                var pl = Losses.PolicyLoss(lp.LogProbs, Cut(logpOld), Cut(advantages), mbMask, _o.ClipRange, _o.ClipRange);
                var vl = Losses.ValueLoss(values, Cut(valuesOld), Cut(returns), mbMask, _o.ValueClipRange);
                var loss = pl.Loss + _o.ValueCoef * vl.Loss;
                if (_o.EntropyCoef > 0)
                {
                    var ent = Masked.Mean(lp.Entropy!, mbMask);
                    loss = loss - _o.EntropyCoef * ent;
                    Accumulate(sums, "objective/entropy", weight * ent.ToDouble());
                }
                Optimizer.Backward(GroupShare.Scale(loss, weight));
                var report = Optimizer.Step();
                foreach (var (k, v) in pl.Stats.Concat(vl.Stats)) Accumulate(sums, k, weight * v);
                foreach (var (k, v) in report.Stats) Accumulate(optimizer, k, v);
                updates++;
            }
        }
        foreach (var (k, v) in Group.Weighted(sums, 1).Concat(optimizer)) stats[k] = v / updates;
        Kl.Update(stats["objective/kl"], B);
        stats["objective/kl_coef"] = Kl.Value;
        return stats;
    }

    /// <summary>
    /// This member's (b, c) rows, end-aligned into the whole batch's (B, C) at row <paramref name="lo"/> and summed over the
    /// group: every member then holds every row (adding zeros is exact). Solo: the tensors as they are.
    /// </summary>
    List<Tensor> Gather(List<Tensor> local, int B, int C, int lo)
    {
        if (Group.IsSolo) return local;
        var full = local.Select(t =>
        {
            var f = zeros([B, C], dtype: t.dtype, device: t.device);
            f.narrow(0, lo, t.shape[0]).narrow(1, C - t.shape[1], t.shape[1]).copy_(t);
            return f;
        }).ToList();
        Group.Sum(full);
        return full;
    }

    static void Accumulate(Dictionary<string, double> sums, string key, double value) =>
        sums[key] = sums.GetValueOrDefault(key) + value;

    public void Dispose() { Optimizer.Dispose(); _shuffle.Dispose(); }
}
