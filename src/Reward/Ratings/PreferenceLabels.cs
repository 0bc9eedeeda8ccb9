namespace Rlft.Reward.Ratings;

/// <summary>A rater's answer to "which of A and B is better?".</summary>
internal enum PairAnswer { A, B, Tie, BothBad }

/// <summary>How much better the chosen side is, when the rater said.</summary>
internal enum PreferenceStrength { Unstated, Slightly, Much }

/// <summary>What a tie (or a "both bad") becomes: no training pair, or a pair with target ½.</summary>
internal enum TieHandling { Drop, Half }

/// <summary>
/// How pair answers become training targets. A target is the probability that the chosen completion is preferred,
/// p ∈ [½, 1]: the label of a soft Bradley–Terry / DPO loss, −p·log σ(x) − (1−p)·log σ(−x), where x is the reward
/// (or implicit-reward) margin of chosen over rejected. p = 1 is the usual hard preference; p = ½ (a tie) pulls the
/// margin to 0. Defaults: "slightly better" 0.75, "much better" and an unstated strength 1; ties and "both bad" dropped.
/// </summary>
internal sealed record PreferenceWeighting
{
    public TieHandling Ties { get; init; } = TieHandling.Drop;
    public TieHandling BothBad { get; init; } = TieHandling.Drop;
    public double Slightly { get; init; } = 0.75;
    public double Much { get; init; } = 1.0;
    public double Unstated { get; init; } = 1.0;

    public static readonly PreferenceWeighting Default = new();

    /// <summary>Null when usable, else what is wrong (each target must be in (½, 1]).</summary>
    public string? Problem() =>
        new[] { (Slightly, "slightly"), (Much, "much"), (Unstated, "unstated") }
            .Where(t => !(t.Item1 > 0.5 && t.Item1 <= 1)).Select(t => $"{t.Item2}: {t.Item1} is outside (0.5, 1]").FirstOrDefault();
}

/// <summary>
/// One training pair from pair answers: whether the first completion (A) is the chosen one, the target probability
/// that the chosen one is preferred, and a weight (the number of answers it stands for).
/// </summary>
internal sealed record PreferenceLabel(bool FirstIsChosen, double Target, double Weight);

/// <summary>
/// Ties and strengths to preference targets. For one answer, <see cref="Label"/>; for several raters of one pair,
/// <see cref="Combine"/> averages their P(A ≻ B) and weighs the result by how many answers it stands for, which gives
/// the same soft-label loss as training on each answer separately (the loss is linear in its target).
/// </summary>
internal static class PreferenceLabels
{
    /// <summary>P(A ≻ B) implied by one answer: A much 1, A slightly 0.75, tie or both bad ½, B slightly 0.25, B much 0 (defaults).</summary>
    public static double ProbabilityFirst(PairAnswer answer, PreferenceStrength strength, PreferenceWeighting w) => answer switch
    {
        PairAnswer.A => Target(strength, w),
        PairAnswer.B => 1 - Target(strength, w),
        _ => 0.5,
    };

    /// <summary>The training pair one answer gives, or null when the weighting drops it (a tie or "both bad" under Drop).</summary>
    public static PreferenceLabel? Label(PairAnswer answer, PreferenceStrength strength, PreferenceWeighting w) => answer switch
    {
        PairAnswer.A => new PreferenceLabel(true, Target(strength, w), 1),
        PairAnswer.B => new PreferenceLabel(false, Target(strength, w), 1),
        PairAnswer.Tie when w.Ties == TieHandling.Half => new PreferenceLabel(true, 0.5, 1),
        PairAnswer.BothBad when w.BothBad == TieHandling.Half => new PreferenceLabel(true, 0.5, 1),
        _ => null,
    };

    /// <summary>
    /// Several answers to one pair as one training pair: p = mean P(A ≻ B) over the answers kept; chosen is A when
    /// p ≥ ½ (target p) else B (target 1 − p); weight = answers kept. Null when none is kept.
    /// </summary>
    public static PreferenceLabel? Combine(IEnumerable<(PairAnswer Answer, PreferenceStrength Strength)> answers, PreferenceWeighting w)
    {
        var kept = answers.Where(a => Label(a.Answer, a.Strength, w) is not null).ToList();
        if (kept.Count == 0) return null;
        double p = kept.Sum(a => ProbabilityFirst(a.Answer, a.Strength, w)) / kept.Count;
        return p >= 0.5 ? new PreferenceLabel(true, p, kept.Count) : new PreferenceLabel(false, 1 - p, kept.Count);
    }

    static double Target(PreferenceStrength strength, PreferenceWeighting w) => strength switch
    {
        PreferenceStrength.Slightly => w.Slightly,
        PreferenceStrength.Much => w.Much,
        _ => w.Unstated,
    };
}
