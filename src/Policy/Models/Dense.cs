using Rlft.Policy.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>
/// A linear projection that can carry a LoRA adapter. <see cref="Transposed"/> is GPT-2's Conv1D, whose weight is
/// stored (in, out); otherwise the weight is nn.Linear's (out, in). The adapter's tensors are registered as
/// <c>lora_A</c> / <c>lora_B</c> submodules so their keys read like PEFT's (<c>q_proj.lora_A.weight</c>).
/// A frozen base can be stored quantized (<see cref="Quantize"/>, QLoRA): the fp32 weight is dropped, the 4/8-bit
/// tensors become buffers (<c>q_proj.weight_nf4</c>, <c>q_proj.weight_absmax</c>, …) and the forward dequantizes.
/// </summary>
internal sealed class Dense : nn.Module<Tensor, Tensor>
{
    public Parameter weight;           // (out, in), or (in, out) when Transposed
    public Parameter? bias;            // (out,)
    public readonly bool Transposed;
    public readonly long InFeatures, OutFeatures;

    internal Linear? lora_A;           // (r, in)
    internal Linear? lora_B;           // (out, r)
    internal double LoraScale, LoraDropout;
    internal bool LoraMerged, LoraDisabled;
    // While set, frozen adapter tensors (A (r, in), B (out, r)) used in place of lora_A / lora_B, without dropout:
    // a stage's reference policy when the adapters themselves are what trained before it (Lora.AdapterSnapshot).
    internal (Tensor A, Tensor B)? LoraOverride;

    QuantizedWeight? _quantized;
    ScalarType _computeDtype = ScalarType.Float32;

    public Dense(long inFeatures, long outFeatures, bool hasBias, bool transposed = false) : base(nameof(Dense))
    {
        InFeatures = inFeatures; OutFeatures = outFeatures; Transposed = transposed;
        var device = ParameterDevice.Current;
        weight = new Parameter(transposed ? empty(inFeatures, outFeatures, device: device) : empty(outFeatures, inFeatures, device: device));
        bias = hasBias ? new Parameter(zeros(outFeatures, device: device)) : null;
        RegisterComponents();
    }

    public bool HasAdapter => lora_A is not null;

    /// <summary>The 4/8-bit base weight, or null when the weight is a plain fp32 parameter.</summary>
    public QuantizedWeight? Quantized => _quantized;

    /// <summary>Where the layer's weight lives (its parameter's device, or its quantized storage's).</summary>
    public Device Device => _quantized?.Device ?? weight.device;

    /// <summary>
    /// Replaces the weight by <paramref name="quantized"/> (W in (out, in) orientation, also for a transposed layer):
    /// the fp32 parameter is released and <c>weight</c> becomes a shape-only placeholder on the meta device. The
    /// forward rebuilds W in <paramref name="computeDtype"/>; the bias, if any, stays a frozen fp32 parameter.
    /// </summary>
    public void Quantize(QuantizedWeight quantized, ScalarType computeDtype)
    {
        if (_quantized is not null) throw new InvalidOperationException("this layer is already quantized");
        if (LoraMerged) throw new InvalidOperationException("unmerge the LoRA adapter before quantizing the base weight");
        if (quantized.OutFeatures != OutFeatures || quantized.InFeatures != InFeatures)
            throw new ArgumentException($"quantized weight is ({quantized.OutFeatures}, {quantized.InFeatures}), the layer ({OutFeatures}, {InFeatures})");
        _internal_params.Remove(nameof(weight));
        var shape = weight.shape;
        weight.Dispose();
        weight = new Parameter(empty(shape, device: META), requires_grad: false);
        if (bias is not null) bias.requires_grad = false;
        // The module owns the storage from here on: no caller's dispose scope may release it.
        foreach (var (name, t) in quantized.Tensors()) register_buffer(name, t.DetachFromDisposeScope());
        (_quantized, _computeDtype) = (quantized, computeDtype);
    }

    /// <summary>A quantized layer moves its storage with the module; its dtypes are fixed (compute dtype is separate).</summary>
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        if (_quantized is not null && dtype is not null)
            throw new InvalidOperationException("a quantized layer keeps its storage dtypes; its compute dtype is set when it is quantized");
        base._toEpilog(dtype, device, non_blocking);
        if (_quantized is null) return;
        var moved = named_buffers(recurse: false).ToDictionary(b => b.name, b => b.buffer);
        _quantized = QuantizedWeight.FromTensors(_quantized.Kind, OutFeatures, InFeatures, _quantized.DoubleQuant, name => moved[name]);
    }

    /// <summary>Whether a forward pass draws random numbers (adapter dropout in training): a recomputation must replay them.</summary>
    internal bool DrawsRandom => HasDropout && training;

    /// <summary>Whether the adapter applies dropout in training mode (so a training-mode pass differs from an eval-mode one).</summary>
    internal bool HasDropout => lora_A is not null && !LoraMerged && !LoraDisabled && LoraDropout > 0;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor y;
        if (_quantized is not null)
        {
            y = QuantizedLinear.Apply(x, _quantized, _computeDtype);                     // (..., out)
            if (bias is not null) y = y + bias;
        }
        else
        {
            y = DecodeLinear.Forward(x, weight, bias, Transposed);                       // (..., out)
        }
        if (lora_A is not null && !LoraMerged && !LoraDisabled)
        {
            // A bf16 base with fp32 adapters (LoRA with bf16 compute): the adapter branch runs in the adapters' dtype
            // and its output is cast to the base's, as PEFT does.
            Tensor delta;
            if (LoraOverride is var (a, b)) delta = F.linear(F.linear(InDtype(x, a.dtype), a), b) * LoraScale;  // (..., out)
            else
            {
                var h = InDtype(LoraDropout > 0 ? F.dropout(x, LoraDropout, training) : x, lora_A.weight!.dtype);
                delta = lora_B!.forward(lora_A.forward(h)) * LoraScale;                // (..., out)
            }
            y = y + InDtype(delta, y.dtype);
        }
        return y.MoveToOuterDisposeScope();
    }

    static Tensor InDtype(Tensor t, ScalarType dtype) => t.dtype == dtype ? t : t.to(dtype);

    /// <summary>
    /// What the adapter branch adds to the weight in the forward as the layer stands (in its storage layout), or null
    /// when no adapter is active (none, merged into the weight already, or switched off); a reference's snapshot in
    /// place of the adapters counts as them.
    /// </summary>
    internal Tensor? ActiveAdapterDelta()
    {
        if (lora_A is null || LoraMerged || LoraDisabled) return null;
        if (LoraOverride is not var (a, b)) return AdapterDelta();
        using var _ = no_grad();
        return Delta(a, b);
    }

    /// <summary>The adapter's update as a weight delta in this layer's storage layout.</summary>
    internal Tensor AdapterDelta()
    {
        if (_quantized is not null) throw new InvalidOperationException("a LoRA update cannot be folded into a quantized base weight");
        return Delta(lora_A!.weight!, lora_B!.weight!);
    }

    /// <summary>(α/r)·B·A for A (r, in) and B (out, r), in this layer's storage layout.</summary>
    Tensor Delta(Tensor a, Tensor b)
    {
        var delta = b.matmul(a) * LoraScale;                                           // (out, in)
        return Transposed ? delta.t() : delta;
    }
}
