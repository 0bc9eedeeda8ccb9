namespace Rlft.Actors.Protocol;

/// <summary>Score the samples of one rollout batch.</summary>
internal sealed record ScoreBatch(long BatchId, long RewardModelVersion, RolloutBatch Batch) : IRlftMessage;

/// <summary>
/// Scores for a batch: one total per sample, each component's values, and the samples dropped (with
/// reasons) by the pipeline's missing-value policy. Totals of dropped samples are 0 and must be ignored.
/// </summary>
internal sealed record ScoredBatch(long BatchId, float[] Scores, string[] ComponentNames, float[][] Components, int[] Dropped, string[] DropReasons, double Seconds) : IRlftMessage
{
    /// <summary>
    /// The indices of <paramref name="batch"/>'s samples a learner can train on: those not dropped, and with groups
    /// (GRPO's advantages are relative to the group) only whole groups.
    /// </summary>
    public int[] Trainable(RolloutBatch batch, int samplesPerPrompt)
    {
        var dropped = Dropped.ToHashSet();
        var droppedGroups = samplesPerPrompt > 1 ? dropped.Select(i => batch.Samples[i].Group).ToHashSet() : [];
        return Enumerable.Range(0, batch.Samples.Length)
            .Where(i => !dropped.Contains(i) && !droppedGroups.Contains(batch.Samples[i].Group))
            .ToArray();
    }

    /// <summary>Samples dropped because a score was NaN or infinite.</summary>
    public int NonFinite => DropReasons.Count(r => r.Contains(NonFiniteReason, StringComparison.Ordinal));

    /// <summary>The words every non-finite drop reason carries.</summary>
    public const string NonFiniteReason = Rlft.Reward.SampleScore.NonFinite;
}

/// <summary>Scoring failed as a whole (e.g. the reward model is not loaded); the coordinator skips the batch and generates another.</summary>
internal sealed record ScoreFailed(long BatchId, string Reason) : IRlftMessage;
