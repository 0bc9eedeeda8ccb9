using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>A stage's <c>early-stopping { patience, min-delta }</c>.</summary>
public sealed record EarlyStoppingOptions
{
    /// <summary>Held-out evaluations in a row without improvement after which training stops, ≥ 1. Default 3 (as Keras's and HF's callbacks count).</summary>
    public int Patience { get; init; } = 3;
    /// <summary>An evaluation improves only when its loss is below the best by more than this, ≥ 0. Default 0.</summary>
    public double MinDelta { get; init; }

    public EarlyStoppingOptions Validate(string prefix = "early-stopping")
    {
        Check.Positive($"{prefix}.patience", Patience);
        Check.Range($"{prefix}.min-delta", MinDelta, 0, double.MaxValue);
        return this;
    }
}

/// <summary>What <see cref="EarlyStopping.Observe"/> concluded from one held-out evaluation.</summary>
internal sealed record EarlyStoppingReport(bool Improved, bool Stop, double BestLoss, int BestStep, int BadEvaluations)
{
    public IReadOnlyDictionary<string, double> Stats => new Dictionary<string, double>
    {
        ["early_stopping/best_loss"] = BestLoss,
        ["early_stopping/best_step"] = BestStep,
        ["early_stopping/bad_evaluations"] = BadEvaluations,
    };
}

/// <summary>
/// Early stopping on a held-out loss: tracks the best loss, says to stop on the <see cref="EarlyStoppingOptions.Patience"/>-th
/// evaluation in a row that does not improve on it by more than min-delta (a NaN loss never improves), and keeps a
/// copy of the trainable parameters as they were at the best evaluation so that <see cref="RestoreBest"/> puts them
/// back. Only trainable parameters are copied (frozen ones cannot have changed): LoRA adapters with adapters, the
/// whole model's weights otherwise; under bf16 compute pass the fp32 masters and sync the compute copy after restoring.
/// </summary>
internal sealed class EarlyStopping : IDisposable
{
    readonly EarlyStoppingOptions _options;
    readonly List<(string Name, Parameter Parameter)> _parameters;
    Dictionary<string, Tensor>? _best;

    public double BestLoss { get; private set; } = double.NaN;
    /// <summary>The step the best loss was measured at (−1 before any).</summary>
    public int BestStep { get; private set; } = -1;
    public int BadEvaluations { get; private set; }
    public bool Stopped { get; private set; }

    /// <param name="parameters">The parameters to snapshot on improvement (the optimizer's); see <see cref="Regularization.TrainableParameters.Of"/>.</param>
    public EarlyStopping(EarlyStoppingOptions options, IEnumerable<(string Name, Parameter Parameter)> parameters)
    {
        _options = options.Validate();
        _parameters = parameters.ToList();
        if (_parameters.Count == 0) throw new ArgumentException("early stopping: no parameters to keep the best of");
    }

    /// <summary>
    /// Records the held-out <paramref name="loss"/> measured after <paramref name="step"/>: on improvement the
    /// parameters are copied (replacing the previous best copy); <see cref="EarlyStoppingReport.Stop"/> says to stop.
    /// </summary>
    public EarlyStoppingReport Observe(double loss, int step)
    {
        bool improved = !double.IsNaN(loss) && (double.IsNaN(BestLoss) || loss < BestLoss - _options.MinDelta);
        if (improved)
        {
            (BestLoss, BestStep, BadEvaluations) = (loss, step, 0);
            Capture();
        }
        else if (++BadEvaluations >= _options.Patience) Stopped = true;
        return new EarlyStoppingReport(improved, Stopped, BestLoss, BestStep, BadEvaluations);
    }

    void Capture()
    {
        using var _ = no_grad();
        if (_best is null) _best = _parameters.ToDictionary(p => p.Name, p => p.Parameter.detach().clone().DetachFromDisposeScope());
        else foreach (var (name, p) in _parameters) _best[name].copy_(p);
    }

    /// <summary>Copies the best evaluation's parameters back; false (nothing changed) when no evaluation was finite.</summary>
    public bool RestoreBest()
    {
        if (_best is null) return false;
        using var _ = no_grad();
        foreach (var (name, p) in _parameters) p.copy_(_best[name]);
        return true;
    }

    public void Dispose()
    {
        if (_best is null) return;
        foreach (var t in _best.Values) t.Dispose();
        _best = null;
    }
}
