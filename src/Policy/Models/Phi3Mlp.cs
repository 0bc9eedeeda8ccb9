using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>Phi-3 SwiGLU MLP with a fused <c>gate_up_proj</c>: its first I output rows are the gate, the next I the up projection.</summary>
internal sealed class Phi3Mlp : nn.Module<Tensor, Tensor>
{
    public Dense gate_up_proj;   // (2I, H)
    public Dense down_proj;      // (H, I)
    readonly long inter;

    public Phi3Mlp(ModelConfig c) : base(nameof(Phi3Mlp))
    {
        inter = c.IntermediateSize;
        gate_up_proj = new Dense(c.HiddenSize, 2 * inter, hasBias: false);
        down_proj = new Dense(inter, c.HiddenSize, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gateUp = gate_up_proj.forward(x);                                   // (B, T, 2I)
        var h = gateUp.narrow(-1, inter, inter) * F.silu(gateUp.narrow(-1, 0, inter)); // up · silu(gate), (B, T, I)
        return down_proj.forward(h).MoveToOuterDisposeScope();                  // (B, T, H)
    }
}
