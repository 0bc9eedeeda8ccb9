namespace Rlft.Policy.Training;

/// <summary>Whether a smaller or a larger metric is better (a held-out loss, or a held-out reward).</summary>
public enum MetricMode { Min, Max }

/// <summary>
/// Reduce-on-plateau settings (the optimizer's <c>schedule = plateau</c>, its <c>plateau { … }</c> section). Defaults
/// from PyTorch's <c>ReduceLROnPlateau</c> where they mean the same: factor 0.1, min-lr 0; patience counts as Keras's
/// does (see <see cref="PlateauSchedule"/>), default 3 as evaluations here are few.
/// </summary>
public sealed record PlateauOptions
{
    /// <summary>The learning rate is multiplied by this on a plateau, in (0, 1). Default 0.1 (PyTorch).</summary>
    public double Factor { get; init; } = 0.1;
    /// <summary>Non-improving evaluations in a row that make a plateau, ≥ 1. Default 3.</summary>
    public int Patience { get; init; } = 3;
    /// <summary>The learning rate is never reduced below this, ≥ 0. Default 0 (PyTorch).</summary>
    public double MinLr { get; init; }
    /// <summary>Min: a smaller metric is better (held-out loss); max: larger is better (held-out reward). Default min.</summary>
    public MetricMode Mode { get; init; } = MetricMode.Min;
    /// <summary>An evaluation improves only when it beats the best by more than this (absolute), ≥ 0. Default 0.</summary>
    public double MinDelta { get; init; }

    public PlateauOptions Validate(string prefix = "plateau")
    {
        Check.Range($"{prefix}.factor", Factor, 0, 1, minExclusive: true);
        if (Factor >= 1) throw new OptionException($"{prefix}.factor: {Factor} is outside (0, 1): a plateau must lower the learning rate");
        Check.Positive($"{prefix}.patience", Patience);
        Check.Range($"{prefix}.min-lr", MinLr, 0, 10);
        Check.Range($"{prefix}.min-delta", MinDelta, 0, double.MaxValue);
        return this;
    }
}

/// <summary>
/// Reduce-on-plateau: the learning rate is multiplied by <see cref="PlateauOptions.Factor"/> (never below
/// <see cref="PlateauOptions.MinLr"/>) on the <see cref="PlateauOptions.Patience"/>-th evaluation in a row that does
/// not improve on the best metric so far; the count then starts again. This is Keras's <c>ReduceLROnPlateau</c>
/// counting; PyTorch's reduces one evaluation later (its patience p is our p + 1). A NaN metric never improves.
/// <see cref="TrainingOptimizer"/> applies it with <c>schedule = plateau</c> (after any warmup); its state is part of
/// the optimizer's saved state.
/// </summary>
internal sealed class PlateauSchedule
{
    readonly PlateauOptions _options;

    /// <summary>The learning rate now: the initial one, reduced once per plateau so far, floored at min-lr.</summary>
    public double LearningRate { get; private set; }
    /// <summary>The best metric so far (NaN before the first evaluation).</summary>
    public double Best { get; private set; } = double.NaN;
    /// <summary>Non-improving evaluations since the last improvement or reduction.</summary>
    public int BadEvaluations { get; private set; }
    public int Reductions { get; private set; }
    public PlateauOptions Options => _options;

    public PlateauSchedule(PlateauOptions options, double initialLearningRate)
    {
        _options = options.Validate();
        if (!(initialLearningRate > 0) || double.IsInfinity(initialLearningRate))
            throw new OptionException($"plateau: the initial learning rate must be positive, got {initialLearningRate}");
        LearningRate = initialLearningRate;
    }

    /// <summary>True when <paramref name="metric"/> beats the best so far by more than min-delta (the first finite one always does).</summary>
    public bool Improves(double metric) =>
        !double.IsNaN(metric) && (double.IsNaN(Best) || (_options.Mode == MetricMode.Min
            ? metric < Best - _options.MinDelta
            : metric > Best + _options.MinDelta));

    /// <summary>Records one evaluation; returns true when it lowered the learning rate.</summary>
    public bool Observe(double metric)
    {
        if (Improves(metric))
        {
            Best = metric;
            BadEvaluations = 0;
            return false;
        }
        if (++BadEvaluations < _options.Patience) return false;
        BadEvaluations = 0;
        double reduced = Math.Max(LearningRate * _options.Factor, _options.MinLr);
        if (reduced >= LearningRate) return false;                           // already at min-lr
        LearningRate = reduced;
        Reductions++;
        return true;
    }

    /// <summary>The state to save with the optimizer: "lr best bad reductions" (invariant culture, round-trip).</summary>
    public string SaveState() => string.Join(' ', new[] { LearningRate, Best, BadEvaluations, Reductions }
        .Select(x => x.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Restores <see cref="SaveState"/>'s output.</summary>
    public void LoadState(string state)
    {
        var parts = state.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 4) throw new FormatException($"plateau state '{state}': expected 4 numbers");
        double Num(int i) => double.Parse(parts[i], System.Globalization.CultureInfo.InvariantCulture);
        (LearningRate, Best, BadEvaluations, Reductions) = (Num(0), Num(1), (int)Num(2), (int)Num(3));
    }
}
