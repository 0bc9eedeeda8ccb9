namespace Rlft.Reward.Pipeline;

/// <summary>
/// Turns each component's raw scores into one reward per sample:
/// missing policy → normalisation → clipping → <c>Σ weight · value</c> → total clipping.
/// Holds the running moments of <see cref="Normalization.Running"/> components; everything else is
/// a pure function of the batch. The output never holds NaN or ∞: such samples are dropped or substituted.
/// Not thread-safe: one owner (a reward actor) calls it, and ships <see cref="Moments"/> to others to merge.
/// </summary>
internal sealed class RewardCombiner
{
    readonly Dictionary<string, RunningMoments> moments = new(StringComparer.Ordinal);

    public IReadOnlyList<ComponentOptions> Components { get; }
    public ClipRange TotalClip { get; }

    public RewardCombiner(IReadOnlyList<ComponentOptions> components, ClipRange? totalClip = null)
    {
        if (components.Count == 0) throw new ArgumentException("a reward needs at least one component", nameof(components));
        foreach (var c in components)
        {
            if (!double.IsFinite(c.Weight)) throw new ArgumentException($"component '{c.Name}': weight must be finite");
            c.Clip.Validate();
            if (c.Missing.Action == MissingAction.Substitute && !double.IsFinite(c.Missing.Value))
                throw new ArgumentException($"component '{c.Name}': substitute must be finite");
        }
        var duplicate = components.GroupBy(c => c.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"component name '{duplicate.Key}' is used twice");
        Components = components;
        TotalClip = (totalClip ?? ClipRange.Unbounded).Validate();
    }

    /// <summary>Running moments per <see cref="Normalization.Running"/> component (source scores only, not substitutes).</summary>
    public IReadOnlyDictionary<string, RunningMoments> Moments => new Dictionary<string, RunningMoments>(moments);

    /// <summary>Folds in moments gathered elsewhere (another node, a checkpoint).</summary>
    public void MergeMoments(IReadOnlyDictionary<string, RunningMoments> other)
    {
        foreach (var (name, m) in other) moments[name] = moments.GetValueOrDefault(name).Merge(m);
    }

    /// <param name="scores">One entry per component, in <see cref="Components"/> order, each with one score per sample.</param>
    public ScoredBatch Combine(IReadOnlyList<SourceScores> scores)
    {
        if (scores.Count != Components.Count) throw new ArgumentException($"{scores.Count} score lists for {Components.Count} components", nameof(scores));
        int n = scores.Count == 0 ? 0 : scores[0].Scores.Count;
        int k = Components.Count;
        var raw = new double?[k][];
        var failure = new string?[k][];
        var value = new double[k][];
        var dropped = new string?[n];
        for (int c = 0; c < k; c++)
        {
            var s = scores[c].Scores.Count == n ? scores[c].Scores
                : SourceScores.AllFailed(Components[c].Name, n, $"source returned {scores[c].Scores.Count} scores for {n} samples").Scores;
            raw[c] = new double?[n];
            failure[c] = new string?[n];
            value[c] = new double[n];
            for (int i = 0; i < n; i++)
            {
                raw[c][i] = s[i].Value is { } v && double.IsFinite(v) ? v : null;
                failure[c][i] = raw[c][i] is null ? s[i].Failure ?? "no score" : null;
                if (raw[c][i] is { } r) value[c][i] = r;
                else if (Components[c].Missing.Action == MissingAction.Substitute) value[c][i] = Components[c].Missing.Value;
                else dropped[i] ??= $"{Components[c].Name}: {failure[c][i]}";
            }
        }

        var kept = Enumerable.Range(0, n).Where(i => dropped[i] is null).ToArray();
        for (int c = 0; c < k; c++) Normalize(c, kept, raw[c], value[c]);

        var samples = new ScoredSample[n];
        for (int i = 0; i < n; i++)
        {
            double total = 0;
            for (int c = 0; c < k && dropped[i] is null; c++)
            {
                var o = Components[c];
                double v = o.Clip.Apply(value[c][i]);
                // Normalising extreme values can overflow; such a score is as missing as a NaN from the source.
                if (!double.IsFinite(v))
                {
                    if (o.Missing.Action == MissingAction.Substitute) v = o.Clip.Apply(o.Missing.Value);
                    else { dropped[i] = $"{o.Name}: normalised score is not finite"; break; }
                }
                value[c][i] = v;
                total += o.Weight * v;
            }
            if (dropped[i] is null && !double.IsFinite(total)) dropped[i] = "total is not finite";
            samples[i] = new ScoredSample(
                dropped[i] is null ? TotalClip.Apply(total) : null,
                Enumerable.Range(0, k).Select(c => new ComponentScore(
                    Components[c].Name,
                    raw[c][i],
                    dropped[i] is null ? value[c][i] : null,
                    dropped[i] is null ? Components[c].Weight * value[c][i] : null,
                    failure[c][i])).ToArray(),
                dropped[i]);
        }
        return new ScoredBatch(samples);
    }

    void Normalize(int c, int[] kept, double?[] raw, double[] value)
    {
        var o = Components[c];
        if (o.Normalization == Normalization.None || kept.Length == 0) return;
        var values = kept.Select(i => value[i]).ToArray();
        RunningMoments m;
        if (o.Normalization == Normalization.Batch) m = RunningMoments.Of(values);
        else
        {
            var fromSource = kept.Where(i => raw[i].HasValue).Select(i => raw[i]!.Value).ToArray();
            m = moments[o.Name] = moments.GetValueOrDefault(o.Name).Add(fromSource);
        }
        var normalized = Whitening.Standardize(values, m);
        for (int j = 0; j < kept.Length; j++) value[kept[j]] = normalized[j];
    }
}
