using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Regularization;

/// <summary>
/// Elastic weight consolidation (Kirkpatrick et al., 2017, "Overcoming catastrophic forgetting in neural networks"):
/// <c>P(θ) = weight/2 · Σ_i F_i (θ_i − θ*_i)²</c>, F the diagonal Fisher information of the earlier task's data at
/// θ* (see <see cref="FisherDiagonal"/>), θ* the weights the earlier stage ended with. Parameters that mattered for
/// the earlier task (large F) are held near θ*; the rest move freely. Gradient: <c>weight · F ⊙ (θ − θ*)</c>.
/// With several earlier stages, sum their Fisher diagonals (<see cref="FisherDiagonal.Add"/>) and anchor at the
/// latest weights (online EWC, Schwarz et al., 2018, with γ = 1).
/// </summary>
internal sealed class EwcPenalty : IParameterPenalty
{
    readonly List<(string Name, Parameter Parameter)> _parameters;
    readonly Dictionary<string, Tensor> _fisher;
    readonly Dictionary<string, Tensor> _anchor;

    public double Weight { get; }
    public string Metric => "loss/ewc";

    /// <param name="fisher">The diagonal Fisher by parameter name, each the shape of its parameter; the penalty keeps its own copies.</param>
    /// <param name="anchor">θ* by name; null: the parameters' current values (a stage starting where the earlier one ended).</param>
    public EwcPenalty(IEnumerable<(string Name, Parameter Parameter)> parameters, IReadOnlyDictionary<string, Tensor> fisher, double weight,
        IReadOnlyDictionary<string, Tensor>? anchor = null)
    {
        if (!(weight >= 0) || double.IsInfinity(weight)) throw new ArgumentOutOfRangeException(nameof(weight), $"ewc: the weight must be a finite number >= 0, got {weight}");
        Weight = weight;
        _parameters = parameters.ToList();
        if (_parameters.Count == 0) throw new ArgumentException("ewc: no trainable parameters to consolidate");
        foreach (var (name, p) in _parameters)
        {
            if (!fisher.TryGetValue(name, out var f)) throw new ArgumentException($"ewc: the Fisher diagonal has no entry for parameter '{name}'");
            if (!f.shape.SequenceEqual(p.shape)) throw new ArgumentException($"ewc: the Fisher diagonal of '{name}' has shape [{string.Join(", ", f.shape)}], the parameter [{string.Join(", ", p.shape)}]");
            if (anchor is not null && !anchor.ContainsKey(name)) throw new ArgumentException($"ewc: the anchor weights have no entry for parameter '{name}'");
        }
        using (no_grad())
        {
            _fisher = _parameters.ToDictionary(p => p.Name, p => fisher[p.Name].detach().to(p.Parameter.dtype, p.Parameter.device).clone().DetachFromDisposeScope());
            _anchor = anchor is null
                ? TrainableParameters.Snapshot(_parameters)
                : _parameters.ToDictionary(p => p.Name, p => anchor[p.Name].detach().to(p.Parameter.dtype, p.Parameter.device).clone().DetachFromDisposeScope());
        }
    }

    public Tensor Penalty()
    {
        Tensor? sum = null;
        foreach (var (name, p) in _parameters)
        {
            var term = (_fisher[name] * (p - _anchor[name]).square()).sum();  // scalar
            sum = sum is null ? term : sum + term;
        }
        return sum! * (Weight / 2);
    }

    public void Dispose()
    {
        foreach (var t in _fisher.Values.Concat(_anchor.Values)) t.Dispose();
        _fisher.Clear();
        _anchor.Clear();
    }
}
