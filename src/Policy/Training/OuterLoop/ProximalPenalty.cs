using Rlft.Policy.Training.Regularization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>
/// FedProx's proximal term (Li et al., 2020, "Federated Optimization in Heterogeneous Networks"), added to a client's
/// local loss: <c>P(w) = μ/2 · ‖w − w_global‖²</c> over the trainable parameters, w_global the round's global weights.
/// Its gradient <c>μ · (w − w_global)</c> pulls each local step back toward where the round started, which bounds how
/// far a client with unusual data drifts in <c>local-steps</c> steps. μ = 0 is FedAvg.
/// </summary>
internal sealed class ProximalPenalty : IParameterPenalty
{
    readonly List<(string Name, Parameter Parameter)> _parameters;
    readonly Dictionary<string, Tensor> _global;

    public double Mu { get; }
    public string Metric => "loss/prox";

    /// <param name="global">The round's global weights, one tensor per parameter name; the penalty keeps its own copies in the parameters' dtype and device.</param>
    public ProximalPenalty(IEnumerable<(string Name, Parameter Parameter)> parameters, WeightSet global, double mu)
    {
        if (!(mu >= 0) || double.IsInfinity(mu)) throw new ArgumentOutOfRangeException(nameof(mu), $"mu: FedProx's proximal weight must be a finite number >= 0, got {mu}");
        Mu = mu;
        _parameters = parameters.ToList();
        using var _ = no_grad();
        _global = _parameters.ToDictionary(p => p.Name, p => global[p.Name].to(p.Parameter.dtype, p.Parameter.device).clone().DetachFromDisposeScope());
    }

    public Tensor Penalty()
    {
        Tensor? sum = null;
        foreach (var (name, p) in _parameters)
        {
            var term = (p - _global[name]).square().sum();                  // scalar
            sum = sum is null ? term : sum + term;
        }
        return (sum ?? tensor(0f)) * (Mu / 2);
    }

    public void Dispose()
    {
        foreach (var t in _global.Values) t.Dispose();
        _global.Clear();
    }
}
