using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>SwiGLU MLP: down_proj(silu(gate_proj(x)) * up_proj(x)).</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    public Dense gate_proj;   // (I, H)
    public Dense up_proj;     // (I, H)
    public Dense down_proj;   // (H, I)

    public LlamaMlp(ModelConfig c) : base(nameof(LlamaMlp))
    {
        gate_proj = new Dense(c.HiddenSize, c.IntermediateSize, c.MlpBias);
        up_proj = new Dense(c.HiddenSize, c.IntermediateSize, c.MlpBias);
        down_proj = new Dense(c.IntermediateSize, c.HiddenSize, c.MlpBias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = F.silu(gate_proj.forward(x)) * up_proj.forward(x);   // (B, T, I)
        return down_proj.forward(h).MoveToOuterDisposeScope();       // (B, T, H)
    }
}
