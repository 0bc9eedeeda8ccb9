using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Gemma 2/3 decoder layer, with a norm on each side of both blocks:
/// x + post_attention_layernorm(self_attn(input_layernorm(x))), then + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x))).
/// </summary>
internal sealed class GemmaDecoderLayer : nn.Module, IDecoderBlock
{
    public GemmaAttention self_attn;
    public LlamaMlp mlp;
    public GemmaRmsNorm input_layernorm;
    public GemmaRmsNorm post_attention_layernorm;
    public GemmaRmsNorm pre_feedforward_layernorm;
    public GemmaRmsNorm post_feedforward_layernorm;

    public GemmaDecoderLayer(ModelConfig c, int layer) : base(nameof(GemmaDecoderLayer))
    {
        self_attn = new GemmaAttention(c, layer);
        mlp = new LlamaMlp(c);
        input_layernorm = new GemmaRmsNorm(c.HiddenSize, c.NormEps);
        post_attention_layernorm = new GemmaRmsNorm(c.HiddenSize, c.NormEps);
        pre_feedforward_layernorm = new GemmaRmsNorm(c.HiddenSize, c.NormEps);
        post_feedforward_layernorm = new GemmaRmsNorm(c.HiddenSize, c.NormEps);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        x = x + post_attention_layernorm.forward(self_attn.Forward(input_layernorm.forward(x), ctx));   // (B, T, H)
        x = x + post_feedforward_layernorm.forward(mlp.forward(pre_feedforward_layernorm.forward(x)));  // (B, T, H)
        return x.MoveToOuterDisposeScope();
    }
}
