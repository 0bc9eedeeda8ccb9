using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Regularization;

/// <summary>
/// L2-SP (Li, Grandvalet &amp; Davoine, 2018, "Explicit inductive bias for transfer learning"): a pull toward the
/// starting point instead of toward zero, so a fine-tuned model stays near the weights it started the stage with:
/// <c>P(θ) = weight · Σ_i ‖θ_i − θ₀_i‖²</c> over the trainable parameters, θ₀ their values when the penalty is made
/// (the stage's start). Its gradient is <c>2 · weight · (θ − θ₀)</c>. (The paper writes α/2 · ‖θ − θ₀‖²: its α is
/// 2 · weight.)
/// </summary>
internal sealed class L2SpPenalty : IParameterPenalty
{
    readonly List<(string Name, Parameter Parameter)> _parameters;
    readonly Dictionary<string, Tensor> _start;

    public double Weight { get; }
    public string Metric => "loss/l2_sp";

    /// <summary>Snapshots <paramref name="parameters"/> now: θ₀ is their current value.</summary>
    public L2SpPenalty(IEnumerable<(string Name, Parameter Parameter)> parameters, double weight)
    {
        if (!(weight >= 0) || double.IsInfinity(weight)) throw new ArgumentOutOfRangeException(nameof(weight), $"l2-sp: the weight must be a finite number >= 0, got {weight}");
        Weight = weight;
        _parameters = parameters.ToList();
        if (_parameters.Count == 0) throw new ArgumentException("l2-sp: no trainable parameters to hold near their start");
        _start = TrainableParameters.Snapshot(_parameters);
    }

    /// <summary>The start θ₀ of one parameter (read-only: a snapshot the penalty owns).</summary>
    public Tensor Start(string name) => _start[name];

    public Tensor Penalty()
    {
        Tensor? sum = null;
        foreach (var (name, p) in _parameters)
        {
            var term = (p - _start[name]).square().sum();                 // scalar
            sum = sum is null ? term : sum + term;
        }
        return sum! * Weight;
    }

    public void Dispose()
    {
        foreach (var t in _start.Values) t.Dispose();
        _start.Clear();
    }
}
