using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>A decoder layer's self-attention block (the module registered as <c>self_attn</c>): hidden (B, T, H) → (B, T, H).</summary>
internal abstract class DecoderAttention : nn.Module
{
    protected DecoderAttention(string name) : base(name) { }

    public abstract Tensor Forward(Tensor x, LayerContext ctx);
}
