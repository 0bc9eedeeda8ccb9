using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>
/// A linear projection that can carry a LoRA adapter. <see cref="Transposed"/> is GPT-2's Conv1D, whose weight is
/// stored (in, out); otherwise the weight is nn.Linear's (out, in). The adapter's tensors are registered as
/// <c>lora_A</c> / <c>lora_B</c> submodules so their keys read like PEFT's (<c>q_proj.lora_A.weight</c>).
/// </summary>
public sealed class Dense : nn.Module<Tensor, Tensor>
{
    public Parameter weight;           // (out, in), or (in, out) when Transposed
    public Parameter? bias;            // (out,)
    public readonly bool Transposed;
    public readonly long InFeatures, OutFeatures;

    internal Linear? lora_A;           // (r, in)
    internal Linear? lora_B;           // (out, r)
    internal double LoraScale, LoraDropout;
    internal bool LoraMerged, LoraDisabled;

    public Dense(long inFeatures, long outFeatures, bool hasBias, bool transposed = false) : base(nameof(Dense))
    {
        InFeatures = inFeatures; OutFeatures = outFeatures; Transposed = transposed;
        var device = ParameterDevice.Current;
        weight = new Parameter(transposed ? empty(inFeatures, outFeatures, device: device) : empty(outFeatures, inFeatures, device: device));
        bias = hasBias ? new Parameter(zeros(outFeatures, device: device)) : null;
        RegisterComponents();
    }

    public bool HasAdapter => lora_A is not null;

    /// <summary>Whether a forward pass draws random numbers (adapter dropout in training): a recomputation must replay them.</summary>
    internal bool DrawsRandom => lora_A is not null && !LoraMerged && !LoraDisabled && LoraDropout > 0 && training;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor y;
        if (Transposed)
        {
            var flat = x.reshape(-1, InFeatures);                                     // (N, in)
            var outShape = x.shape[..^1].Append(OutFeatures).ToArray();
            y = (bias is null ? flat.matmul(weight) : addmm(bias, flat, weight, 1, 1)).view(outShape); // (..., out)
        }
        else
        {
            y = F.linear(x, weight, bias);                                            // (..., out)
        }
        if (lora_A is not null && !LoraMerged && !LoraDisabled)
        {
            var h = LoraDropout > 0 ? F.dropout(x, LoraDropout, training) : x;
            y = y + lora_B!.forward(lora_A.forward(h)) * LoraScale;                   // (..., out)
        }
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>The adapter's update as a weight delta in this layer's storage layout.</summary>
    internal Tensor AdapterDelta()
    {
        var delta = lora_B!.weight.matmul(lora_A!.weight) * LoraScale;              // (out, in)
        return Transposed ? delta.t() : delta;
    }
}
