using static TorchSharp.torch;

namespace Rlft.Policy.Training.Regularization;

/// <summary>
/// A penalty on the trainable parameters that a trainer adds to its loss before the backward pass, so that its
/// gradient reaches the parameters with the loss's. Computed on the parameters the optimizer steps (the fp32 masters
/// under bf16 compute: <see cref="MixedPrecisionModel.SyncGradients"/> adds the compute copy's gradients to theirs).
/// </summary>
internal interface IParameterPenalty : IDisposable
{
    /// <summary>The slash-named metric the penalty's value is reported under (<c>loss/l2_sp</c>, <c>loss/ewc</c>).</summary>
    string Metric { get; }

    /// <summary>The penalty as a differentiable scalar; the caller owns it (a dispose scope around the step).</summary>
    Tensor Penalty();
}

/// <summary>Named trainable parameters: what a penalty covers and what its snapshots are keyed by.</summary>
internal static class TrainableParameters
{
    /// <summary>The parameters of <paramref name="module"/> that require gradients, by their state-dict names.</summary>
    public static List<(string Name, TorchSharp.Modules.Parameter Parameter)> Of(nn.Module module) =>
        module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();

    /// <summary>Detached copies of the parameters' current values (a snapshot θ₀), by name.</summary>
    public static Dictionary<string, Tensor> Snapshot(IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters)
    {
        using var _ = no_grad();
        return parameters.ToDictionary(p => p.Name, p => p.Parameter.detach().clone().DetachFromDisposeScope());
    }
}

/// <summary>Adds a trainer's penalties to its loss.</summary>
internal static class Penalties
{
    /// <summary>
    /// <paramref name="loss"/> plus every penalty, and each penalty's value under its metric name (empty when there
    /// are none). Call inside the step's dispose scope, before the backward pass.
    /// </summary>
    public static (Tensor Loss, Dictionary<string, double> Stats) Add(Tensor loss, IReadOnlyList<IParameterPenalty> penalties)
    {
        var stats = new Dictionary<string, double>();
        foreach (var penalty in penalties)
        {
            var value = penalty.Penalty();                                     // scalar
            stats[penalty.Metric] = value.detach().cpu().to(ScalarType.Float64).item<double>();
            loss = loss + value.to(loss.dtype);
        }
        return (loss, stats);
    }
}
