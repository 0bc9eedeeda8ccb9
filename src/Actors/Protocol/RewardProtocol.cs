namespace Rlft.Actors.Protocol;

/// <summary>Score the samples of one rollout batch.</summary>
public sealed record ScoreBatch(long BatchId, long RewardModelVersion, RolloutBatch Batch) : IRlftMessage;

/// <summary>
/// Scores for a batch: one total per sample, each component's values, and the samples dropped (with
/// reasons) by the pipeline's missing-value policy. Totals of dropped samples are 0 and must be ignored.
/// </summary>
public sealed record ScoredBatch(long BatchId, float[] Scores, string[] ComponentNames, float[][] Components, int[] Dropped, string[] DropReasons, double Seconds) : IRlftMessage;

/// <summary>Scoring failed as a whole (e.g. the reward model is not loaded); the coordinator retries.</summary>
public sealed record ScoreFailed(long BatchId, string Reason) : IRlftMessage;
