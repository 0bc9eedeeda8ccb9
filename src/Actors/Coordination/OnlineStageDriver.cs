using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.Coordination;

/// <summary>
/// One online stage (PPO, GRPO, online DPO) as a state machine without actors: it decides what work exists, which
/// batch trains next, and what a failure costs; the coordinator actor carries its decisions out as messages.
/// Batches go through four places — the ledger (pending or in flight on a worker), scoring, ready to train, and the
/// learner — and at most <c>max-policy-lag + 1</c> of them are anywhere at once, so generation of batch k+1 overlaps
/// training on batch k. A batch older than the lag when its turn comes is dropped and another generated with the
/// current policy; a batch whose scoring fails is skipped the same way, until
/// <c>max-consecutive-reward-failures</c> in a row fail the job.
/// </summary>
internal sealed class OnlineStageDriver
{
    readonly JobSpec _job;
    readonly OnlineStageData _data;
    readonly TimeSpan _workTimeout;
    readonly Dictionary<long, RolloutBatch> _scoring = new();
    readonly Queue<TrainOn> _ready = new();
    // Issued and not yet trained on (nor dropped): a checkpoint lists them so a resumed run generates them again.
    readonly SortedDictionary<long, GenerateRollouts> _outstanding = new();
    readonly Dictionary<long, int> _rolloutFailures = new();
    int _consecutiveRewardFailures;

    public StageSpec Stage { get; }
    public WorkLedger<GenerateRollouts> Ledger { get; } = new();
    /// <summary>Training steps done in this stage.</summary>
    public int Step { get; private set; }
    /// <summary>Batches created so far that count toward the stage's steps (dropped and skipped ones are given back).</summary>
    public int Issued { get; private set; }
    /// <summary>Handing out work: from the "before" evaluation until the last step, or an interruption.</summary>
    public bool Running { get; private set; }
    public bool LearnerBusy { get; private set; }
    public long StaleDropped { get; private set; }
    public long RewardSkipped { get; private set; }
    public bool Done => Step >= Stage.Steps;
    public int DataCursor => _data.Cursor;
    public PromptItem[] EvalPrompts => _data.EvalPrompts;
    public IReadOnlyCollection<GenerateRollouts> Outstanding => _outstanding.Values;
    /// <summary>Batches generated or being generated but not yet trained on.</summary>
    public int Ahead => Ledger.InFlight + Ledger.Pending + _scoring.Count + _ready.Count + (LearnerBusy ? 1 : 0);

    /// <param name="midStage">A checkpoint's state to continue from: its step, issued count, data position and the
    /// batches that were outstanding, which are generated again with the same prompts and seeds.</param>
    public OnlineStageDriver(JobSpec job, StageSpec stage, OnlineStageData data, TimeSpan workTimeout, ResumeState? midStage = null)
    {
        (_job, Stage, _data, _workTimeout) = (job, stage, data, workTimeout);
        (Step, Issued) = (midStage?.Step ?? 0, midStage?.Issued ?? 0);
        _data.Seek(midStage?.DataCursor ?? 0);
        foreach (var work in midStage?.Outstanding ?? [])
        {
            Ledger.Enqueue(new WorkItem<GenerateRollouts>(work.BatchId, work));
            _outstanding[work.BatchId] = work;
        }
    }

    public void Start() => Running = true;

    /// <summary>No more work is handed out (the job was interrupted or ended).</summary>
    public void Stop() => Running = false;

    /// <summary>
    /// Work for an idle worker, stamped with the current policy version, or null when none should start now. A new
    /// batch (id from <paramref name="nextBatchId"/>) is created only while fewer than lag + 1 are ahead of the learner.
    /// </summary>
    public GenerateRollouts? NextWork(string workerId, long policyVersion, Func<long> nextBatchId, DateTime now)
    {
        if (!Running) return null;
        if (Ledger.Pending == 0 && Ahead < _job.MaxPolicyLag + 1 && Issued < Stage.Steps)
        {
            long id = nextBatchId();
            var work = new GenerateRollouts(id, Stage.Index, policyVersion, _data.NextBatch(), _data.Sampling, OnlineStageData.SeedFor(_job, id));
            Ledger.Enqueue(new WorkItem<GenerateRollouts>(id, work));
            _outstanding[id] = work;
            Issued++;
        }
        return Ledger.Assign(workerId, now, _workTimeout) is { } item ? item.Payload with { PolicyVersion = policyVersion } : null;
    }

    /// <summary>A worker finished a batch: true when it is this stage's and not a duplicate — then it awaits scoring.</summary>
    public bool Generated(RolloutBatch batch)
    {
        if (batch.Stage != Stage.Index || !Ledger.Complete(batch.BatchId, batch.WorkerId)) return false;
        _scoring[batch.BatchId] = batch;
        return true;
    }

    /// <summary>A generated batch that has no score yet (to send to a scorer again when its scorer left).</summary>
    public RolloutBatch? AwaitingScore(long batchId) => _scoring.GetValueOrDefault(batchId);

    public IEnumerable<RolloutBatch> AwaitingScores => _scoring.Values;

    /// <summary>A worker could not generate a batch: it is re-issued; null, or why the job fails (the third failure of one batch).</summary>
    public string? GenerationFailed(RolloutFailed f)
    {
        if (!Ledger.Fail(f.BatchId)) return null;
        int failures = _rolloutFailures[f.BatchId] = _rolloutFailures.GetValueOrDefault(f.BatchId) + 1;
        return failures >= 3 ? $"rollout batch {f.BatchId} failed {failures} times: {f.Reason}" : null;
    }

    /// <summary>What became of a batch's scoring.</summary>
    public sealed record ScoreOutcome(bool Ready, string? Skipped = null, string? Fail = null)
    {
        public static readonly ScoreOutcome Ignored = new(false);
    }

    public ScoreOutcome Scored(ScoredBatch scored)
    {
        if (!_scoring.Remove(scored.BatchId, out var batch)) return ScoreOutcome.Ignored;
        if (scored.Trainable(batch, Stage.SamplesPerPrompt).Length == 0)
            return RewardFailed(scored.BatchId, $"every sample was dropped by the reward pipeline ({scored.DropReasons.FirstOrDefault() ?? "no reason given"})");
        _consecutiveRewardFailures = 0;
        _ready.Enqueue(new TrainOn(scored.BatchId, Stage.Index, batch, scored));
        return new ScoreOutcome(true);
    }

    public ScoreOutcome ScoringFailed(ScoreFailed f) =>
        _scoring.Remove(f.BatchId, out _) ? RewardFailed(f.BatchId, f.Reason) : ScoreOutcome.Ignored;

    ScoreOutcome RewardFailed(long batchId, string reason)
    {
        RewardSkipped++;
        if (++_consecutiveRewardFailures >= _job.MaxConsecutiveRewardFailures)
            return new ScoreOutcome(false, Fail: $"scoring failed for {_consecutiveRewardFailures} batches in a row (rlft.job.max-consecutive-reward-failures = {_job.MaxConsecutiveRewardFailures}); the last: {reason}");
        _outstanding.Remove(batchId);
        Issued--;
        return new ScoreOutcome(false, Skipped: $"batch {batchId} skipped, another is generated in its place: {reason}");
    }

    /// <summary>
    /// The next scored batch for the learner, or null while it is busy or nothing is ready. Batches older than the
    /// staleness bound by now are dropped on the way (counted; a fresh batch takes each one's place).
    /// </summary>
    public TrainOn? NextToTrain(long policyVersion)
    {
        while (!LearnerBusy && _ready.Count > 0)
        {
            var next = _ready.Dequeue();
            if (policyVersion - next.Batch.PolicyVersion > _job.MaxPolicyLag)
            {
                StaleDropped++;
                Issued--;
                _outstanding.Remove(next.BatchId);
                continue;
            }
            LearnerBusy = true;
            return next;
        }
        return null;
    }

    /// <summary>The learner trained on a batch: one step done.</summary>
    public void Trained(PolicyUpdated update)
    {
        LearnerBusy = false;
        _outstanding.Remove(update.BatchId);
        Step++;
    }

    /// <summary>The last step is done: whatever is still in the pipeline is not needed.</summary>
    public void Finish()
    {
        Running = false;
        Ledger.Clear();
        _ready.Clear();
        _scoring.Clear();
        _outstanding.Clear();
    }

    /// <summary>Work past its deadline goes back to the queue; true when some did.</summary>
    public bool Expire(DateTime now) => Ledger.Expire(now).Count > 0;

    /// <summary>A worker left: the batches it held go back to the queue.</summary>
    public IReadOnlyList<long> WorkerLost(string workerId) => Ledger.WorkerLost(workerId);
}
