using static TorchSharp.torch;

namespace Rlft.Policy.Generation;

/// <summary>A left-padded batch: ids (B, T) int64 and attention mask (B, T) int64, 1 = real token.</summary>
internal sealed record TokenBatch(Tensor InputIds, Tensor AttentionMask) : IDisposable
{
    public long Batch => InputIds.shape[0];
    public long Length => InputIds.shape[1];

    /// <summary>Pads every sequence on the left to the longest; padding takes <paramref name="padId"/> and mask 0.</summary>
    public static TokenBatch LeftPad(IReadOnlyList<int[]> sequences, int padId, Device? device = null)
    {
        if (sequences.Count == 0) throw new ArgumentException("no sequences to batch");
        int t = sequences.Max(s => s.Length);
        var ids = new long[sequences.Count * t];
        var mask = new long[sequences.Count * t];
        for (int b = 0; b < sequences.Count; b++)
        {
            var s = sequences[b];
            int offset = t - s.Length;
            for (int i = 0; i < t; i++)
            {
                bool real = i >= offset;
                ids[b * t + i] = real ? s[i - offset] : padId;
                mask[b * t + i] = real ? 1 : 0;
            }
        }
        var idsT = tensor(ids, [sequences.Count, t], device: device);
        var maskT = tensor(mask, [sequences.Count, t], device: device);
        return new TokenBatch(idsT, maskT);
    }

    public void Dispose() { InputIds.Dispose(); AttentionMask.Dispose(); }
}
