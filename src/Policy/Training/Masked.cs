using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>Reductions over the response tokens only (mask = 1 on response tokens, 0 elsewhere).</summary>
internal static class Masked
{
    /// <summary>Mean of <paramref name="x"/> over positions where mask is 1; 0 when the mask is empty.</summary>
    public static Tensor Mean(Tensor x, Tensor mask) =>
        (x * mask).sum() / mask.sum().clamp_min(1.0);

    /// <summary>Per-row mean over masked positions: (B, T) → (B).</summary>
    public static Tensor RowMean(Tensor x, Tensor mask) =>
        (x * mask).sum(1) / mask.sum(1).clamp_min(1.0);

    /// <summary>Unbiased masked variance (as TRL's masked_var), 0 with fewer than two tokens.</summary>
    public static Tensor Var(Tensor x, Tensor mask)
    {
        var mean = Mean(x, mask);
        var centered = (x - mean) * mask;
        var n = mask.sum();
        var sumSq = (centered * centered).sum();
        return torch.where(n > 1, sumSq / (n - 1).clamp_min(1.0), torch.zeros_like(sumSq));
    }

    /// <summary>
    /// Whitening over the masked batch: (x − mean)/std so the response tokens have mean 0 and std 1.
    /// With <paramref name="shiftMean"/> false the mean is restored (TRL's reward whitening).
    /// A constant batch gives zeros (the epsilon keeps the division finite). Padding stays 0.
    /// </summary>
    public static Tensor Whiten(Tensor x, Tensor mask, bool shiftMean = true, double eps = 1e-8)
    {
        var mean = Mean(x, mask);
        var whitened = (x - mean) * torch.rsqrt(Var(x, mask) + eps);
        if (!shiftMean) whitened += mean;
        return whitened * mask;
    }
}
