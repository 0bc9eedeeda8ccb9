namespace Rlft.Actors.Protocol;

/// <summary>Registers a worker (rollout or reward) with the coordinator.</summary>
internal sealed record RegisterWorker(string WorkerId, string Role) : IRlftMessage;

/// <summary>The job has finished: the path of summary.json and the final figures.</summary>
internal sealed record JobFinished(bool Succeeded, string Message, Dictionary<string, double> Summary) : IRlftMessage
{
    /// <summary>Why a job ends when the learner's node stops being a cluster member before it finished.</summary>
    public const string NodeLeft = "this node left the cluster before the job finished (downed by the split-brain resolver, or shut down); "
        + "see the cluster log, and akka.cluster.split-brain-resolver in the job file";
}

/// <summary>Ask the coordinator how the job stands (for progress displays and tests).</summary>
internal sealed record QueryJobStatus : IRlftMessage
{
    public static readonly QueryJobStatus Instance = new();
}

/// <summary>The job's state: stage, step, batch accounting.</summary>
internal sealed record JobStatus(
    int Stage,
    string StageKind,
    int Step,
    int TotalSteps,
    long PolicyVersion,
    bool Finished,
    long BatchesTrained,
    long BatchesReissued,
    long DuplicateBatchesIgnored,
    Dictionary<string, long> BatchesPerWorker,
    Dictionary<string, double> LastMetrics,
    Dictionary<string, long[]>? InFlightPerWorker = null,
    string[]? RolloutWorkers = null,
    RecentSample[]? RecentSamples = null) : IRlftMessage;

/// <summary>A sample of the batch trained last, with its reward and each component's weighted value (for the dashboard).</summary>
internal sealed record RecentSample(long BatchId, long PolicyVersion, string Prompt, string Completion, double Reward, Dictionary<string, double> Components)
{
    /// <summary>The first <paramref name="count"/> scored samples of a batch about to be trained on.</summary>
    public static RecentSample[] Of(TrainOn work, int count) =>
        Enumerable.Range(0, Math.Min(count, work.Batch.Samples.Length))
            .Where(i => !work.Scores.Dropped.Contains(i))
            .Select(i => new RecentSample(work.BatchId, work.Batch.PolicyVersion, work.Batch.Samples[i].Prompt, work.Batch.Samples[i].Completion,
                work.Scores.Scores[i],
                work.Scores.ComponentNames.Select((name, k) => (name, value: (double)work.Scores.Components[k][i]))
                    .Where(c => double.IsFinite(c.value)).ToDictionary(c => c.name, c => c.value)))
            .ToArray();
}

/// <summary>Stop the job where it stands and write a checkpoint there (Ctrl-C); answered with CheckpointSaved.</summary>
internal sealed record InterruptJob(string Reason) : IRlftMessage;
