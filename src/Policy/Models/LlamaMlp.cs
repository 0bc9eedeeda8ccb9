using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>Gated MLP: down_proj(act(gate_proj(x)) * up_proj(x)); SwiGLU (silu) for Llama/Qwen, GeGLU (tanh GELU) for Gemma.</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    public Dense gate_proj;   // (I, H)
    public Dense up_proj;     // (I, H)
    public Dense down_proj;   // (H, I)
    readonly Activation activation;

    public LlamaMlp(ModelConfig c) : base(nameof(LlamaMlp))
    {
        activation = c.Activation;
        gate_proj = new Dense(c.HiddenSize, c.IntermediateSize, c.MlpBias);
        up_proj = new Dense(c.HiddenSize, c.IntermediateSize, c.MlpBias);
        down_proj = new Dense(c.IntermediateSize, c.HiddenSize, c.MlpBias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gate = gate_proj.forward(x);                             // (B, T, I)
        var act = activation switch
        {
            Activation.GeluTanh => gate.gelu(GELU.Approximate.tanh),
            Activation.Gelu => gate.gelu(),
            _ => F.silu(gate),
        };
        var h = act * up_proj.forward(x);                            // (B, T, I)
        return down_proj.forward(h).MoveToOuterDisposeScope();       // (B, T, H)
    }
}
