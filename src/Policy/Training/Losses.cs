using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Training;

/// <summary>A scalar loss to differentiate and the slash-named statistics that describe it.</summary>
internal sealed record LossResult(Tensor Loss, IReadOnlyDictionary<string, double> Stats);

/// <summary>
/// The objectives as small functions of tensors (no model inside), each returning the loss and
/// its statistics. Shapes: B batch, T response positions, V vocabulary. Masks are 1 on the tokens
/// the loss covers.
/// </summary>
internal static class Losses
{
    /// <summary>
    /// PPO clipped surrogate (Schulman et al., 2017): L = max(−A·ρ, −A·clip(ρ, 1−ε_low, 1+ε_high)),
    /// ρ = exp(logp − logp_old), masked token mean. ε_high = ε_low gives standard PPO; DAPO uses 0.28.
    /// </summary>
    public static LossResult PolicyLoss(Tensor logp, Tensor logpOld, Tensor advantages, Tensor mask, double clipLow, double clipHigh)
    {
        var logRatio = logp - logpOld;                                        // (B, T)
        var ratio = exp(logRatio);                                            // (B, T)
        var unclipped = -advantages * ratio;
        var clipped = -advantages * ratio.clamp(1.0 - clipLow, 1.0 + clipHigh);
        var loss = Masked.Mean(maximum(unclipped, clipped), mask);
        using var _ = no_grad();
        var stats = new Dictionary<string, double>
        {
            ["loss/policy"] = loss.ToDouble(),
            ["policy/clipfrac"] = Masked.Mean((clipped > unclipped).to(logp.dtype), mask).ToDouble(),
            ["policy/approxkl"] = Masked.Mean(0.5 * logRatio * logRatio, mask).ToDouble(),
            ["val/ratio"] = Masked.Mean(ratio, mask).ToDouble(),
        };
        return new LossResult(loss, stats);
    }

    /// <summary>
    /// Clipped value loss: ½·max((V − R)², (V_old + clip(V − V_old, ±ε_v) − R)²), masked token mean.
    /// </summary>
    public static LossResult ValueLoss(Tensor values, Tensor valuesOld, Tensor returns, Tensor mask, double clipValue)
    {
        var clippedValues = valuesOld + (values - valuesOld).clamp(-clipValue, clipValue);
        var a = (values - returns).square();
        var b = (clippedValues - returns).square();
        var loss = 0.5 * Masked.Mean(maximum(a, b), mask);
        using var _ = no_grad();
        return new LossResult(loss, new Dictionary<string, double>
        {
            ["loss/value"] = loss.ToDouble(),
            ["val/clipfrac"] = Masked.Mean((b > a).to(values.dtype), mask).ToDouble(),
            ["val/mean"] = Masked.Mean(values, mask).ToDouble(),
        });
    }

    /// <summary>Mean token entropy of the categorical distributions given by (B, T, V) logits, masked.</summary>
    public static Tensor Entropy(Tensor logits, Tensor mask)
    {
        var logProbs = F.log_softmax(logits, -1);                             // (B, T, V)
        var entropy = -(logProbs.exp() * logProbs).sum(-1);                   // (B, T)
        return Masked.Mean(entropy, mask);
    }

    /// <summary>
    /// GRPO loss: the clipped surrogate with per-sample advantages broadcast to tokens, plus β·k3 KL
    /// to the reference inside the loss (Shao et al., 2024).
    /// </summary>
    public static LossResult GrpoLoss(Tensor logp, Tensor logpOld, Tensor logpRef, Tensor sampleAdvantages, Tensor mask, double clipLow, double clipHigh, double beta)
    {
        var adv = sampleAdvantages.unsqueeze(1).expand_as(logp);              // (B, T)
        var policy = PolicyLoss(logp, logpOld, adv, mask, clipLow, clipHigh);
        var kl = Masked.Mean(Kl.Estimate(logp, logpRef, KlEstimator.K3), mask);
        var loss = policy.Loss + beta * kl;
        var stats = new Dictionary<string, double>(policy.Stats)
        {
            ["objective/kl"] = kl.ToDouble(),
            ["loss/total"] = loss.ToDouble(),
        };
        return new LossResult(loss, stats);
    }

    /// <summary>
    /// DPO family on summed response log-probs, each (B): h = (logπ_w − logπref_w) − (logπ_l − logπref_l).
    /// Sigmoid: −(1−ε) log σ(βh) − ε log σ(−βh) (ε = label smoothing, cDPO). IPO: (h − 1/(2β))².
    /// Human preferences (Reward/Ratings/PreferenceLabels) may add per pair a <paramref name="target"/> t = P(w ≻ l) ∈ [½, 1]
    /// (a tie is ½, "slightly better" ¾): Sigmoid then uses the soft label t' = t(1−ε) + (1−t)ε in place of 1−ε,
    /// −t' log σ(βh) − (1−t') log σ(−βh); IPO regresses h onto (t − ½)/β (Azar et al., 2023, with P(w ≻ l) = t).
    /// A per-pair <paramref name="weight"/> (B) makes the loss Σ w·ℓ / Σ w. Both null: exactly the unweighted hard loss.
    /// </summary>
    public static LossResult DpoLoss(Tensor chosen, Tensor rejected, Tensor refChosen, Tensor refRejected, double beta, DpoLossType type, double labelSmoothing = 0,
        Tensor? target = null, Tensor? weight = null)
    {
        var chosenRatio = chosen - refChosen;                                 // (B)
        var rejectedRatio = rejected - refRejected;                           // (B)
        var h = chosenRatio - rejectedRatio;                                  // (B)
        var soft = target is null ? null : target * (1 - 2 * labelSmoothing) + labelSmoothing;   // (B) t'
        var perPair = type switch
        {
            DpoLossType.Sigmoid when soft is null => -(1 - labelSmoothing) * F.logsigmoid(beta * h) - labelSmoothing * F.logsigmoid(-beta * h),
            DpoLossType.Sigmoid => -soft * F.logsigmoid(beta * h) - (1 - soft) * F.logsigmoid(-beta * h),
            DpoLossType.Ipo when target is null => (h - 1.0 / (2 * beta)).square(),
            DpoLossType.Ipo => (h - (target - 0.5) / beta).square(),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };                                                                    // (B)
        var loss = WeightedMean(perPair, weight);
        using var _ = no_grad();
        var rc = beta * chosenRatio;
        var rr = beta * rejectedRatio;
        return new LossResult(loss, new Dictionary<string, double>
        {
            ["loss/dpo"] = loss.ToDouble(),
            ["rewards/chosen"] = rc.mean().ToDouble(),
            ["rewards/rejected"] = rr.mean().ToDouble(),
            ["rewards/accuracies"] = (rc > rr).to(ScalarType.Float32).mean().ToDouble(),
            ["rewards/margins"] = (rc - rr).mean().ToDouble(),
        });
    }

    /// <summary>
    /// Bradley–Terry reward-model loss −log σ(r_c − r_r − margin), (B) scores each. With a per-pair
    /// <paramref name="target"/> t = P(c ≻ r) ∈ [½, 1] (ties ½), the soft form −t log σ(d) − (1−t) log σ(−d), d = r_c − r_r − margin;
    /// with a per-pair <paramref name="weight"/>, Σ w·ℓ / Σ w.
    /// </summary>
    public static LossResult RewardModelLoss(Tensor chosen, Tensor rejected, Tensor? margin = null, Tensor? target = null, Tensor? weight = null)
    {
        var diff = chosen - rejected;                                         // (B)
        var d = margin is null ? diff : diff - margin;                        // (B)
        var perPair = target is null ? -F.logsigmoid(d) : -target * F.logsigmoid(d) - (1 - target) * F.logsigmoid(-d);   // (B)
        var loss = WeightedMean(perPair, weight);
        using var _ = no_grad();
        return new LossResult(loss, new Dictionary<string, double>
        {
            ["loss/reward_model"] = loss.ToDouble(),
            ["rm/accuracy"] = (diff > 0).to(ScalarType.Float32).mean().ToDouble(),
            ["rm/margin"] = diff.mean().ToDouble(),
            ["rm/chosen"] = chosen.mean().ToDouble(),
            ["rm/rejected"] = rejected.mean().ToDouble(),
        });
    }

    /// <summary>Σ w·x / Σ w over (B); the plain mean without weights.</summary>
    static Tensor WeightedMean(Tensor perPair, Tensor? weight) => weight is null ? perPair.mean() : (perPair * weight).sum() / weight.sum();

    /// <summary>
    /// SFT: mean negative log-likelihood of the completion tokens only. <paramref name="tokenLogp"/>
    /// is (B, T) log π of each target token, <paramref name="mask"/> (B, T) 1 on completion targets.
    /// </summary>
    public static LossResult SftLoss(Tensor tokenLogp, Tensor mask)
    {
        var loss = -Masked.Mean(tokenLogp, mask);
        using var _ = no_grad();
        return new LossResult(loss, new Dictionary<string, double>
        {
            ["loss/sft"] = loss.ToDouble(),
            ["sft/perplexity"] = Math.Exp(loss.ToDouble()),
            ["sft/tokens"] = mask.sum().ToDouble(),
        });
    }

    /// <summary>
    /// Token-level forward KL(teacher ‖ student) = Σ_v p_t (log p_t − log p_s), masked mean over tokens.
    /// Logits (B, T, V) each; the teacher's are treated as constants.
    /// </summary>
    public static LossResult ForwardKl(Tensor studentLogits, Tensor teacherLogits, Tensor mask, double temperature = 1.0)
    {
        var s = F.log_softmax(studentLogits / temperature, -1);               // (B, T, V)
        var t = F.log_softmax(teacherLogits.detach() / temperature, -1);      // (B, T, V)
        var perToken = (t.exp() * (t - s)).sum(-1);                           // (B, T)
        var loss = Masked.Mean(perToken, mask);
        using var _ = no_grad();
        return new LossResult(loss, new Dictionary<string, double>
        {
            ["loss/distill"] = loss.ToDouble(),
            ["distill/kl"] = loss.ToDouble(),
        });
    }
}
