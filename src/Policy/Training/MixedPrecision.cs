using Rlft.Policy.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>Numeric precision of the learner's forward/backward passes.</summary>
public enum Precision
{
    /// <summary>bf16 on CUDA, fp32 on CPU (where bf16 matmuls are far slower).</summary>
    Auto,
    Fp32,
    /// <summary>bf16 compute with fp32 master weights.</summary>
    Bf16,
}

/// <summary>
/// Mixed precision by explicit casts (TorchSharp has no autocast): a bf16 copy of the model runs the
/// forward and backward passes; gradients are cast to fp32 and accumulated on the fp32 master
/// weights, which the optimizer updates; the new master weights are cast back into the copy.
/// Hand the trainers <see cref="Compute"/> and the optimizer <see cref="Master"/>'s parameters with this
/// object as its hook (see <see cref="TrainingOptimizer"/>).
/// </summary>
internal sealed class MixedPrecisionModel : IDisposable
{
    readonly List<(Parameter Master, Parameter Compute)> _pairs;

    public CausalLM Master { get; }
    public CausalLM Compute { get; }
    public ScalarType ComputeType { get; }

    public MixedPrecisionModel(CausalLM master, ScalarType computeType = ScalarType.BFloat16)
    {
        if (Quantization.ModelQuantizer.IsQuantized(master))
            throw new InvalidOperationException("a quantized base has no fp32 master weights; set its compute dtype instead");
        Master = master;
        ComputeType = computeType;
        Compute = ModelFactory.Create(master.Config);
        Compute.MoveTo(master.WordEmbeddings.device);
        Compute.to(computeType);
        var computeParams = Compute.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        _pairs = master.named_parameters().Select(p => (p.parameter, computeParams[p.name])).ToList();
        foreach (var (m, c) in _pairs) c.requires_grad = m.requires_grad;
        SyncWeights();
    }

    /// <summary>Whether <paramref name="precision"/> asks for bf16 on <paramref name="device"/>.</summary>
    public static bool Wanted(Precision precision, Device device) =>
        precision == Precision.Bf16 || (precision == Precision.Auto && device.type == DeviceType.CUDA);

    /// <summary>Master → compute copy (cast), after every optimizer update.</summary>
    public void SyncWeights()
    {
        using var _ = no_grad();
        foreach (var (m, c) in _pairs) c.copy_(m);
    }

    /// <summary>Adds the compute copy's gradients, cast to fp32, to the master gradients and clears them.</summary>
    public void SyncGradients()
    {
        using var _ = no_grad();
        foreach (var (m, c) in _pairs)
        {
            if (c.grad is not { } g) continue;
            var g32 = g.to(m.dtype);
            if (m.grad is { } existing) existing.add_(g32);
            else m.grad = g32.clone();
            g32.Dispose();
            g.zero_();
        }
    }

    public void Dispose() => Compute.Dispose();
}
