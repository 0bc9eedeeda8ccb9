using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>GPT-2 MLP: Conv1D up (c_fc), gelu_new (tanh approximation), Conv1D down (c_proj).</summary>
internal sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    public Dense c_fc;     // (C, 4C) Conv1D
    public Dense c_proj;   // (4C, C) Conv1D

    public Gpt2Mlp(ModelConfig c) : base(nameof(Gpt2Mlp))
    {
        c_fc = new Dense(c.HiddenSize, c.IntermediateSize, hasBias: true, transposed: true);
        c_proj = new Dense(c.IntermediateSize, c.HiddenSize, hasBias: true, transposed: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = c_fc.forward(x).gelu(GELU.Approximate.tanh);     // (B, T, 4C)
        return c_proj.forward(h).MoveToOuterDisposeScope();      // (B, T, C)
    }
}
