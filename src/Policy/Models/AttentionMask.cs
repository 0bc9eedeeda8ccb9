using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>How the T new queries may attend to the S keys (history plus themselves).</summary>
/// <param name="Mask">(B, 1, T, S) bool, true = may attend; null when <see cref="Causal"/> alone suffices.</param>
/// <param name="Causal">Let SDPA apply the plain causal mask itself (no padding, no history).</param>
internal readonly record struct AttentionMask(Tensor? Mask, bool Causal)
{
    /// <summary>
    /// Builds the mask for T new tokens after <paramref name="history"/> filled slots. Key j is visible to query i
    /// when it is real (keyValid) and not in the future; a query always sees itself, so a padding query never has
    /// an empty row (which would give NaN in softmax). An optional sliding window hides keys older than it.
    /// </summary>
    public static AttentionMask Build(Tensor keyValid, long newTokens, long history, bool anyPadding, int? slidingWindow)
    {
        long total = history + newTokens;
        bool windowBites = slidingWindow is int w && total > w;
        if (!anyPadding && !windowBites)
        {
            if (newTokens == 1) return new AttentionMask(null, false);        // one query sees every key
            if (history == 0) return new AttentionMask(null, true);           // plain causal prefill
        }
        var device = keyValid.device;
        var qpos = arange(history, total, dtype: ScalarType.Int64, device: device).unsqueeze(1); // (T, 1)
        var kpos = arange(total, dtype: ScalarType.Int64, device: device).unsqueeze(0);          // (1, S)
        var allowed = kpos <= qpos;                                                              // (T, S)
        if (windowBites) allowed = allowed.logical_and(kpos > qpos - slidingWindow!.Value);
        var mask = allowed.unsqueeze(0).logical_and(keyValid.unsqueeze(1));                      // (B, T, S)
        mask = mask.logical_or((kpos == qpos).unsqueeze(0));
        return new AttentionMask(mask.unsqueeze(1), false);                                       // (B, 1, T, S)
    }
}
