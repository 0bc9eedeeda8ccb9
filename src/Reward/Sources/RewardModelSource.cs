namespace Rlft.Reward.Sources;

/// <summary>
/// A batched sequence scorer: the reward-model head implements it (on its device, in its own batches).
/// Returns one score per pair, in order.
/// </summary>
public interface ISequenceScorer
{
    Task<float[]> ScoreAsync(IReadOnlyList<(string Prompt, string Completion)> batch, CancellationToken ct);

    /// <summary>
    /// Scores whole samples: a scorer that understands conversations (a reward model with a chat template) renders
    /// <see cref="RewardSample.Messages"/> and the reply itself; by default the prompt text and completion are scored.
    /// </summary>
    Task<float[]> ScoreSamplesAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct) =>
        ScoreAsync(batch.Select(s => (s.Prompt, s.Completion)).ToList(), ct);
}

/// <summary>
/// A reward model as a source. Batches larger than <paramref name="maxBatch"/> go in chunks so one
/// call never exceeds the model's memory; a non-finite score fails its sample, a scorer exception its chunk.
/// </summary>
public sealed class RewardModelSource(string name, ISequenceScorer scorer, int maxBatch = 32) : IRewardSource
{
    public string Name { get; } = name;

    public async Task<SourceScores> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct)
    {
        var scores = new List<SampleScore>(batch.Count);
        foreach (var chunk in batch.Chunk(Math.Max(1, maxBatch)))
        {
            float[] values;
            try
            {
                values = await scorer.ScoreSamplesAsync(chunk, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                scores.AddRange(Enumerable.Repeat(SampleScore.Fail($"reward model failed: {e.Message}"), chunk.Length));
                continue;
            }
            if (values.Length != chunk.Length)
                scores.AddRange(Enumerable.Repeat(SampleScore.Fail($"reward model returned {values.Length} scores for {chunk.Length} samples"), chunk.Length));
            else
                scores.AddRange(values.Select(v => SampleScore.Ok(v)));
        }
        return new SourceScores(Name, scores);
    }
}
