using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>GPT-2 causal self-attention: one fused Conv1D for q, k, v (c_attn) and an output Conv1D (c_proj).</summary>
internal sealed class Gpt2Attention : nn.Module
{
    public Dense c_attn;   // (C, 3C) Conv1D
    public Dense c_proj;   // (C, C) Conv1D
    readonly int heads, headDim, layer;

    public Gpt2Attention(ModelConfig c, int layer) : base(nameof(Gpt2Attention))
    {
        heads = c.NumHeads; headDim = c.HeadDim; this.layer = layer;
        c_attn = new Dense(c.HiddenSize, 3L * c.HiddenSize, hasBias: true, transposed: true);
        c_proj = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true, transposed: true);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        var qkv = c_attn.forward(x).view(b, t, 3, heads, headDim).permute(2, 0, 3, 1, 4); // (3, B, nh, T, hs)
        Tensor q = qkv[0], k = qkv[1], v = qkv[2];                                        // (B, nh, T, hs)
        if (ctx.Cache is not null) (k, v) = ctx.Cache.Append(layer, k, v);               // (B, nh, S, hs)
        var y = AttentionKernel.Attend(q, k, v, ctx.Mask);                                // (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(b, t, c);                                           // (B, T, C)
        return c_proj.forward(y).MoveToOuterDisposeScope();
    }
}
