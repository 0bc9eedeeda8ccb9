using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Gemma's RMSNorm: x / sqrt(mean(x²) + eps) · (1 + weight), all in float32 and cast back to x's dtype only after
/// the product (Llama casts before multiplying; transformers PR 29402). The weight starts at zero.
/// </summary>
internal sealed class GemmaRmsNorm : nn.Module<Tensor, Tensor>
{
    public Parameter weight;   // (H,)
    readonly double eps;

    public GemmaRmsNorm(long hidden, double eps) : base(nameof(GemmaRmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(zeros(hidden, device: ParameterDevice.Current));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.to(ScalarType.Float32);
        h = h * rsqrt(h.pow(2).mean([-1L], keepdim: true) + eps);          // (..., H)
        h = h * (weight.to(ScalarType.Float32) + 1.0);
        return h.to(x.dtype).MoveToOuterDisposeScope();
    }
}
