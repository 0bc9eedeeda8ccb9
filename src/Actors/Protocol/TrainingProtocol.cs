namespace Rlft.Actors.Protocol;

/// <summary>Experience for one learner update: a scored rollout batch.</summary>
internal sealed record TrainOn(long BatchId, int Stage, RolloutBatch Batch, ScoredBatch Scores) : IRlftMessage;

/// <summary>Run an offline stage (sft, reward-model, dpo on a dataset, distill) to completion.</summary>
internal sealed record RunOfflineStage(int Stage) : IRlftMessage;

/// <summary>Progress of a learner stage; metrics are slash-named.</summary>
internal sealed record StageProgress(int Stage, int Step, int TotalSteps, Dictionary<string, double> Metrics) : IRlftMessage;

/// <summary>The learner finished an update: the policy is now <see cref="PolicyVersion"/>.</summary>
internal sealed record PolicyUpdated(long BatchId, int Stage, int Step, long PolicyVersion, Dictionary<string, double> Metrics) : IRlftMessage;

/// <summary>The learner finished an offline stage.</summary>
internal sealed record StageCompleted(int Stage, long PolicyVersion, long RewardModelVersion, Dictionary<string, double> Metrics) : IRlftMessage
{
    /// <summary>The held-out figures measured <paramref name="label"/> ("before" or "after") the stage, keys without the label.</summary>
    public Dictionary<string, double> Figures(string label) =>
        Metrics.Where(kv => kv.Key.StartsWith(label + "/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key[(label.Length + 1)..], kv => kv.Value);
}

/// <summary>A learner operation failed; the job stops with this reason.</summary>
internal sealed record LearnerFailed(int Stage, string Reason) : IRlftMessage;

/// <summary>Evaluation figures (eval/* metrics) and a few sample completions.</summary>
internal sealed record EvaluationDone(int Stage, string Label, Dictionary<string, double> Metrics, string[] Prompts, string[] Completions) : IRlftMessage;

/// <summary>
/// Write a checkpoint of everything needed to resume; <see cref="ResumeState"/> is the coordinator's half
/// (resume.json), null where the job is not at a point it can continue from.
/// </summary>
internal sealed record SaveCheckpoint(string Directory, string? ResumeState = null) : IRlftMessage;

/// <summary>The checkpoint is on disk.</summary>
internal sealed record CheckpointSaved(string Directory) : IRlftMessage;
