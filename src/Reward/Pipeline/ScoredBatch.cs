namespace Rlft.Reward.Pipeline;

/// <summary>
/// One component's part in a sample's reward. <paramref name="Raw"/>: the source's score (null if it failed);
/// <paramref name="Value"/>: after substitution, normalisation and clipping (null if the sample was dropped);
/// <paramref name="Weighted"/>: Weight · Value, the amount it adds to the total.
/// </summary>
internal sealed record ComponentScore(string Name, double? Raw, double? Value, double? Weighted, string? Failure);

/// <summary>A sample's reward: <paramref name="Total"/> is finite, or null when the sample was dropped (with the reason).</summary>
internal sealed record ScoredSample(double? Total, IReadOnlyList<ComponentScore> Components, string? DroppedReason)
{
    public bool Dropped => Total is null;
}

/// <summary>Scores for a batch, in batch order. Plain data: safe to put in a message.</summary>
internal sealed record ScoredBatch(IReadOnlyList<ScoredSample> Samples)
{
    /// <summary>Slash-named figures for the batch: <c>reward/total/mean</c>, <c>reward/NAME/mean</c>, <c>reward/dropped</c>, …</summary>
    public IReadOnlyDictionary<string, double> Metrics()
    {
        var kept = Samples.Where(s => !s.Dropped).ToList();
        var m = new SortedDictionary<string, double>(StringComparer.Ordinal)
        {
            ["reward/dropped"] = Samples.Count - kept.Count,
        };
        if (kept.Count == 0) return m;
        var totals = kept.Select(s => s.Total!.Value).ToArray();
        m["reward/total/mean"] = totals.Average();
        m["reward/total/std"] = RunningMoments.Of(totals).Std;
        foreach (var name in kept[0].Components.Select(c => c.Name))
        {
            var c = kept.Select(s => s.Components.First(x => x.Name == name)).ToList();
            m[$"reward/{name}/mean"] = c.Average(x => x.Value ?? 0);
            m[$"reward/{name}/raw_mean"] = c.Where(x => x.Raw.HasValue).Select(x => x.Raw!.Value).DefaultIfEmpty(0).Average();
            m[$"reward/{name}/failed"] = Samples.Count(s => s.Components.First(x => x.Name == name).Failure is not null);
        }
        return m;
    }
}
