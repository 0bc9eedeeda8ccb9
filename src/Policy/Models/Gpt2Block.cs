using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>GPT-2 pre-norm block: x + attn(ln_1(x)), then + mlp(ln_2(x)).</summary>
internal sealed class Gpt2Block : nn.Module, IDecoderBlock
{
    public LayerNorm ln_1;
    public Gpt2Attention attn;
    public LayerNorm ln_2;
    public Gpt2Mlp mlp;

    public Gpt2Block(ModelConfig c, int layer) : base(nameof(Gpt2Block))
    {
        ln_1 = nn.LayerNorm(c.HiddenSize, c.NormEps, device: ParameterDevice.Current);
        attn = new Gpt2Attention(c, layer);
        ln_2 = nn.LayerNorm(c.HiddenSize, c.NormEps, device: ParameterDevice.Current);
        mlp = new Gpt2Mlp(c);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        x = x + attn.Forward(ln_1.forward(x), ctx);   // (B, T, C)
        x = x + mlp.forward(ln_2.forward(x));         // (B, T, C)
        return x.MoveToOuterDisposeScope();
    }
}
