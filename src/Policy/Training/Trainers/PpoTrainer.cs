using Rlft.Policy.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// PPO for language models (Ouyang et al., 2022; TRL/OpenRLHF structure): per-token KL shaping against
/// the frozen reference with the score at the last token, GAE, whitened advantages, clipped policy and
/// value losses, several epochs over minibatches, and a fixed or adaptive KL coefficient. Behaviour
/// log-probs are recomputed here (the field's practice) and their mismatch with the sampler's reported.
/// </summary>
public sealed class PpoTrainer : IDisposable
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

    public PpoTrainer(PolicyModel policy, ValueHead value, IReferencePolicy reference, PpoOptions options, OptimizerOptions optimizer,
        IEnumerable<TorchSharp.Modules.Parameter>? policyParameters = null, long seed = 0, MixedPrecisionModel? mixedPrecision = null)
    {
        (_policy, _value, _reference, _o) = (policy, value, reference, options.Validate());
        Optimizer = new TrainingOptimizer((policyParameters ?? mixedPrecision?.Master.parameters() ?? policy.Model.parameters()).Concat(value.parameters()), optimizer, mixedPrecision);
        Kl = options.AdaptiveKl ? new AdaptiveKlController(options.KlCoef, options.KlTarget, options.KlHorizon) : new FixedKlController(options.KlCoef);
        _shuffle = new Generator((ulong)seed);
    }

    public Dictionary<string, double> Step(IReadOnlyList<Experience> batch)
    {
        using var scope = NewDisposeScope();
        int eos = _policy.Tokenizer.EosId;
        var prompts = batch.Select(e => e.PromptTokens).ToList();
        var completions = batch.Select(e => ExperienceTensors.NonEmpty(e.CompletionTokens, eos)).ToList();
        int B = batch.Count, C = completions.Max(c => c.Length);
        var stats = new Dictionary<string, double>();

        // 1. Behaviour quantities under the current weights (no gradient): log π_old, V_old, log π_ref.
        Tensor logpOld, valuesOld, logRef, mask, advantages, returns, kl;
        double beta = Kl.Value;
        using (no_grad())
        {
            _policy.Model.eval();
            using var lp = _policy.LogProbsOf(prompts, completions, entropy: _o.EntropyCoef == 0);
            logpOld = lp.LogProbs.detach().clone();                                        // (B, C)
            mask = lp.Mask.detach().clone();                                               // (B, C)
            valuesOld = (_value.forward(PolicyModel.CompletionHidden(lp).to(ScalarType.Float32)) * mask).detach(); // (B, C)
            logRef = _reference.LogProbs(prompts, completions) * mask;                     // (B, C)
            var sampler = tensor(ExperienceTensors.EndAligned(batch.Select(e => e.SamplerLogprobs).ToList(), C), [B, C], device: mask.device);
            stats["rollout/logprob_mismatch"] = Masked.Mean((sampler - logpOld).abs(), mask).ToDouble();
            if (_o.EntropyCoef == 0) stats["objective/entropy"] = Masked.Mean(lp.Entropy!, mask).ToDouble();

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

        // 2. Epochs over shuffled minibatches.
        _policy.Model.train();
        var sums = new Dictionary<string, double>();
        int updates = 0;
        int mbSize = Math.Max(1, B / _o.MiniBatches);
        for (int epoch = 0; epoch < _o.Epochs; epoch++)
        {
            var order = randperm(B, generator: _shuffle).data<long>().ToArray();
            for (int start = 0; start < B; start += mbSize)
            {
                using var mbScope = NewDisposeScope();
                var idx = order.Skip(start).Take(mbSize).Select(i => (int)i).ToArray();
                var mbCompletions = idx.Select(i => completions[i]).ToList();
                int c = mbCompletions.Max(x => x.Length);
                var rows = tensor(idx.Select(i => (long)i).ToArray(), device: mask.device);
                Tensor Cut(Tensor full) => full.index_select(0, rows).narrow(1, C - c, c);   // end-aligned columns
                using var lp = _policy.LogProbsOf(idx.Select(i => prompts[i]).ToList(), mbCompletions, entropy: _o.EntropyCoef > 0);
                var mbMask = Cut(mask);
                var values = _value.forward(PolicyModel.CompletionHidden(lp).to(ScalarType.Float32));               // (b, c)
                var pl = Losses.PolicyLoss(lp.LogProbs, Cut(logpOld), Cut(advantages), mbMask, _o.ClipRange, _o.ClipRange);
                var vl = Losses.ValueLoss(values, Cut(valuesOld), Cut(returns), mbMask, _o.ValueClipRange);
                var loss = pl.Loss + _o.ValueCoef * vl.Loss;
                if (_o.EntropyCoef > 0)
                {
                    var ent = Masked.Mean(lp.Entropy!, mbMask);
                    loss = loss - _o.EntropyCoef * ent;
                    Accumulate(sums, "objective/entropy", ent.ToDouble());
                }
                Optimizer.Backward(loss);
                var report = Optimizer.Step();
                foreach (var (k, v) in pl.Stats.Concat(vl.Stats).Concat(report.Stats)) Accumulate(sums, k, v);
                updates++;
            }
        }
        foreach (var (k, v) in sums) stats[k] = v / updates;
        Kl.Update(stats["objective/kl"], B);
        stats["objective/kl_coef"] = Kl.Value;
        return stats;
    }

    static void Accumulate(Dictionary<string, double> sums, string key, double value) =>
        sums[key] = sums.GetValueOrDefault(key) + value;

    public void Dispose() { Optimizer.Dispose(); _shuffle.Dispose(); }
}
