using Rlft.Policy.Tokenization;
using static TorchSharp.torch;

namespace Rlft.Policy.Encoders;

/// <summary>Encoder inputs right-padded into tensors: ids, attention mask (1 = real) and token types, each (B, T).</summary>
internal sealed class EncoderBatch : IDisposable
{
    public Tensor InputIds { get; }
    public Tensor AttentionMask { get; }
    public Tensor TokenTypeIds { get; }

    EncoderBatch(Tensor ids, Tensor mask, Tensor types) => (InputIds, AttentionMask, TokenTypeIds) = (ids, mask, types);

    public static EncoderBatch Create(IReadOnlyList<EncoderInput> inputs, int padId, Device device)
    {
        int t = Math.Max(1, inputs.Max(x => x.Length));
        var ids = new long[inputs.Count * t];
        var mask = new long[ids.Length];
        var types = new long[ids.Length];
        Array.Fill(ids, padId);
        for (int b = 0; b < inputs.Count; b++)
            for (int i = 0; i < inputs[b].Length; i++)
            {
                ids[b * t + i] = inputs[b].Ids[i];
                mask[b * t + i] = 1;
                types[b * t + i] = inputs[b].TypeIds[i];
            }
        long[] shape = [inputs.Count, t];
        return new EncoderBatch(tensor(ids, shape).to(device), tensor(mask, shape).to(device), tensor(types, shape).to(device));
    }

    public void Dispose() { InputIds.Dispose(); AttentionMask.Dispose(); TokenTypeIds.Dispose(); }
}
