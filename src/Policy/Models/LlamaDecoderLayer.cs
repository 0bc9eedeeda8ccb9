using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Pre-norm decoder layer: x + self_attn(input_layernorm(x)), then + mlp(post_attention_layernorm(x)). The blocks
/// follow the model type: phi3's fused qkv_proj / gate_up_proj, otherwise separate projections.
/// </summary>
internal sealed class LlamaDecoderLayer : nn.Module, IDecoderBlock
{
    public DecoderAttention self_attn;
    public nn.Module<Tensor, Tensor> mlp;
    public RmsNorm input_layernorm;
    public RmsNorm post_attention_layernorm;

    public LlamaDecoderLayer(ModelConfig c, int layer) : base(nameof(LlamaDecoderLayer))
    {
        self_attn = c.ModelType == "phi3" ? new Phi3Attention(c, layer) : new LlamaAttention(c, layer);
        mlp = c.ModelType == "phi3" ? new Phi3Mlp(c) : new LlamaMlp(c);
        input_layernorm = new RmsNorm(c.HiddenSize, c.NormEps);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.NormEps);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        x = x + self_attn.Forward(input_layernorm.forward(x), ctx);    // (B, T, H)
        x = x + mlp.forward(post_attention_layernorm.forward(x));      // (B, T, H)
        return x.MoveToOuterDisposeScope();
    }
}
