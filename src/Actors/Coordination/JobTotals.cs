using Rlft.Actors.Jobs;

namespace Rlft.Actors.Coordination;

/// <summary>
/// The job's running totals across stages, without actors: batches trained, re-issued, duplicated, dropped as stale
/// and skipped by the reward pipeline, batches per worker, and the summary's figures. Each online stage keeps its own
/// counts in its <see cref="OnlineStageDriver"/>; they are folded in here when the stage ends, and a checkpoint's
/// <see cref="ResumeState"/> carries them.
/// </summary>
internal sealed class JobTotals
{
    long _reissuedBefore, _duplicatesBefore, _staleDroppedBefore, _rewardSkippedBefore;
    readonly Dictionary<string, long> _perWorkerBefore = new();

    /// <summary>The online stage being run (null between online stages).</summary>
    public OnlineStageDriver? Online { get; private set; }
    public long Trained { get; set; }
    /// <summary>The figures summary.json reports, by <c>stage/label/key</c>.</summary>
    public Dictionary<string, double> Summary { get; } = new();

    public long Reissued => _reissuedBefore + (Online?.Ledger.Reissued ?? 0);
    public long Duplicates => _duplicatesBefore + (Online?.Ledger.Duplicates ?? 0);
    public long StaleDropped => _staleDroppedBefore + (Online?.StaleDropped ?? 0);
    public long RewardSkipped => _rewardSkippedBefore + (Online?.RewardSkipped ?? 0);

    /// <summary>Completed batches per rollout worker, over the whole job.</summary>
    public Dictionary<string, long> PerWorker()
    {
        var perWorker = new Dictionary<string, long>(_perWorkerBefore);
        foreach (var (w, n) in Online?.Ledger.CompletedPerWorker ?? new Dictionary<string, long>()) perWorker[w] = perWorker.GetValueOrDefault(w) + n;
        return perWorker;
    }

    /// <summary>An online stage begins: its counts join the totals from now on.</summary>
    public void Begin(OnlineStageDriver online)
    {
        Fold();
        Online = online;
    }

    /// <summary>Adds the finished online stage's counts to the job's totals and lets it go.</summary>
    public void Fold()
    {
        if (Online is not { } done) return;
        _reissuedBefore += done.Ledger.Reissued;
        _duplicatesBefore += done.Ledger.Duplicates;
        _staleDroppedBefore += done.StaleDropped;
        _rewardSkippedBefore += done.RewardSkipped;
        foreach (var (w, n) in done.Ledger.CompletedPerWorker) _perWorkerBefore[w] = _perWorkerBefore.GetValueOrDefault(w) + n;
        Online = null;
    }

    /// <summary>The totals a checkpoint recorded.</summary>
    public void Restore(ResumeState r)
    {
        (Trained, _staleDroppedBefore, _reissuedBefore, _duplicatesBefore) = (r.Trained, r.StaleDropped, r.Reissued, r.Duplicates);
        foreach (var (w, n) in r.BatchesPerWorker) _perWorkerBefore[w] = n;
        foreach (var (k, v) in r.Summary) Summary[k] = v;
    }

    /// <summary>The figures of a finished job: the stages' and the job's counts.</summary>
    public Dictionary<string, double> Final(long policyVersion) => new(Summary)
    {
        ["job/batches_trained"] = Trained,
        ["job/batches_reissued"] = Reissued,
        ["job/stale_dropped"] = StaleDropped,
        ["job/reward_skipped_batches"] = RewardSkipped,
        ["job/policy_version"] = policyVersion,
    };
}
