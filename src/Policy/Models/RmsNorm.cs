using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>LlamaRMSNorm: x / sqrt(mean(x²) + eps) * weight, computed in float32 as transformers does.</summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    public Parameter weight;   // (H,)
    readonly double eps;

    public RmsNorm(long hidden, double eps) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(ones(hidden, device: ParameterDevice.Current));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var dtype = x.dtype;
        var h = x.to(ScalarType.Float32);
        var variance = h.pow(2).mean([-1L], keepdim: true);                  // (..., 1)
        h = h * rsqrt(variance + eps);
        return (weight * h.to(dtype)).MoveToOuterDisposeScope();
    }
}
