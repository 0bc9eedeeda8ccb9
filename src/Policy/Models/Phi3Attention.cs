using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Phi-3 attention: one fused projection <c>qkv_proj</c> whose output rows are the queries (nh·D), then the keys
/// (kv·D), then the values (kv·D); rotary embeddings on the first RotaryDim dimensions of each head
/// (partial_rotary_factor); grouped-query attention as Llama's; no biases.
/// </summary>
internal sealed class Phi3Attention : DecoderAttention
{
    public Dense qkv_proj;   // ((nh + 2·kv)·D, H)
    public Dense o_proj;     // (H, nh·D)
    readonly int heads, kvHeads, headDim, layer;

    public Phi3Attention(ModelConfig c, int layer) : base(nameof(Phi3Attention))
    {
        heads = c.NumHeads; kvHeads = c.NumKeyValueHeads; headDim = c.HeadDim; this.layer = layer;
        qkv_proj = new Dense(c.HiddenSize, (long)(heads + 2 * kvHeads) * headDim, hasBias: false);
        o_proj = new Dense((long)heads * headDim, c.HiddenSize, hasBias: false);
        RegisterComponents();
    }

    public override Tensor Forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], qn = (long)heads * headDim, kn = (long)kvHeads * headDim;
        var qkv = qkv_proj.forward(x);                                                   // (B, T, (nh+2kv)·D)
        var q = qkv.narrow(-1, 0, qn).view(b, t, heads, headDim).transpose(1, 2);       // (B, nh, T, D)
        var k = qkv.narrow(-1, qn, kn).view(b, t, kvHeads, headDim).transpose(1, 2);    // (B, kv, T, D)
        var v = qkv.narrow(-1, qn + kn, kn).view(b, t, kvHeads, headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, ctx.Cos!, ctx.Sin!);
        k = RotaryEmbedding.Apply(k, ctx.Cos!, ctx.Sin!);
        if (ctx.Cache is not null) (k, v) = ctx.Cache.Append(layer, k, v);             // (B, kv, S, D)
        var y = AttentionKernel.Attend(q, k, v, ctx.Mask);                               // (B, nh, T, D)
        y = y.transpose(1, 2).reshape(b, t, qn);                                         // (B, T, nh·D)
        return o_proj.forward(y).MoveToOuterDisposeScope();                              // (B, T, H)
    }
}
