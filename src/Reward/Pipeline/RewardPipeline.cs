namespace Rlft.Reward.Pipeline;

/// <summary>
/// Sources scored concurrently, then combined (<see cref="RewardCombiner"/>). What a reward actor hosts:
/// <c>await pipeline.ScoreAsync(batch, ct)</c> gives the total and every component for each sample.
/// </summary>
internal sealed class RewardPipeline
{
    public IReadOnlyList<RewardComponent> Components { get; }
    public RewardCombiner Combiner { get; }

    public RewardPipeline(IReadOnlyList<RewardComponent> components, ClipRange? totalClip = null)
    {
        Components = components;
        Combiner = new RewardCombiner(components.Select(c => c.Options).ToList(), totalClip);
    }

    public async Task<ScoredBatch> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct)
    {
        if (batch.Count == 0) return new ScoredBatch([]);
        var scores = await Task.WhenAll(Components.Select(c => ScoreOne(c, batch, ct))).ConfigureAwait(false);
        return Combiner.Combine(scores);
    }

    static async Task<SourceScores> ScoreOne(RewardComponent c, IReadOnlyList<RewardSample> batch, CancellationToken ct)
    {
        try
        {
            return await c.Source.ScoreAsync(batch, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // A source that breaks its contract by throwing costs its samples, not the batch.
            return SourceScores.AllFailed(c.Options.Name, batch.Count, $"source failed: {e.Message}");
        }
    }
}
