using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>Reward shaping and advantage estimation for PPO on language models.</summary>
internal static class Advantages
{
    /// <summary>
    /// InstructGPT-style per-token rewards: r_t = −β·kl_t on every response token, plus the (clipped)
    /// sequence score on the last response token. All inputs masked to the response tokens.
    /// </summary>
    /// <param name="logp">(B, T) log π of sampled tokens.</param>
    /// <param name="logpRef">(B, T) log π_ref of the same tokens.</param>
    /// <param name="scores">(B) sequence scores.</param>
    /// <param name="mask">(B, T) 1 on response tokens.</param>
    public static (Tensor Rewards, Tensor Kl) ShapeRewards(Tensor logp, Tensor logpRef, Tensor scores, Tensor mask, double beta, KlEstimator estimator)
    {
        var kl = Kl.Estimate(logp, logpRef, estimator) * mask;               // (B, T)
        var rewards = -beta * kl;                                             // (B, T)
        var last = LastIndex(mask);                                           // (B)
        var bonus = zeros_like(rewards).scatter_(1, last.unsqueeze(1), scores.unsqueeze(1).to(rewards.dtype));
        return ((rewards + bonus) * mask, kl);
    }

    /// <summary>Index of the last 1 in each row of a (B, T) mask (0 for an empty row).</summary>
    public static Tensor LastIndex(Tensor mask)
    {
        var T = mask.shape[1];
        var positions = arange(T, device: mask.device).unsqueeze(0).expand_as(mask);   // (B, T)
        return (positions * (mask > 0)).amax(1).to(ScalarType.Int64);                    // (B)
    }

    /// <summary>
    /// Generalised advantage estimation (Schulman et al., 2016), backwards over the response:
    /// δ_t = r_t + γ V_{t+1} − V_t, A_t = δ_t + γλ A_{t+1}, R_t = A_t + V_t.
    /// Positions outside the mask contribute nothing (V and r are zeroed there).
    /// </summary>
    /// <returns>(advantages, returns), both (B, T), zero outside the mask.</returns>
    public static (Tensor Advantages, Tensor Returns) Gae(Tensor rewards, Tensor values, Tensor mask, double gamma, double lambda)
    {
        var r = rewards * mask;
        var v = values * mask;
        long T = r.shape[1];
        var columns = new Tensor[T];
        Tensor last = zeros_like(r[.., 0]);                                 // (B) A_{t+1}
        for (long t = T - 1; t >= 0; t--)
        {
            var nextV = t + 1 < T ? v[.., t + 1] : zeros_like(last);          // (B)
            var delta = r[.., t] + gamma * nextV - v[.., t];                  // (B)
            last = (delta + gamma * lambda * last) * mask[.., t];             // (B)
            columns[t] = last;
        }
        var adv = stack(columns, 1);                                          // (B, T)
        return (adv, (adv + v) * mask);
    }

    /// <summary>
    /// GRPO group-relative advantages (Shao et al., 2024): (r − mean_group)/(std_group + eps), one value
    /// per sample. Scores come grouped: [g0s0, g0s1, …, g1s0, …] with <paramref name="groupSize"/> each.
    /// </summary>
    public static Tensor GroupNormalized(Tensor scores, int groupSize, double eps = 1e-4, bool scale = true)
    {
        if (scores.shape[0] % groupSize != 0)
            throw new ArgumentException($"batch of {scores.shape[0]} scores is not a whole number of groups of {groupSize}");
        var g = scores.view(-1, groupSize);                                   // (G, n)
        var mean = g.mean([1], keepdim: true);
        if (!scale) return (g - mean).view(-1);                               // (B), Dr. GRPO
        var std = groupSize > 1 ? g.std(1, keepdim: true) : zeros_like(mean);  // unbiased, as TRL
        return ((g - mean) / (std + eps)).view(-1);                           // (B)
    }
}
