using Akka.Event;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>
/// A learner group across nodes that outlives its members. Before every online step and every offline stage the leader
/// writes the training state (a checkpoint, as <c>--resume</c> reads it) to <c>RUN_DIR/learner-group/snapshot</c>. When
/// a replica is lost during a call (its process died: it never answered), the group is formed again from the replicas
/// that answered, every member builds its learner from that snapshot (the survivors held that very state), and the call
/// is made again: an online step is trained again, an offline stage from its start (its steps already reported are not
/// reported twice). Nothing is lost or applied twice, and the coordinator sees one slower step. A learner-replica node
/// that offers itself while the group is short of <c>learners</c> joins the same way at the next step's or stage's start.
/// The replicas read the snapshot from the same path (the same machine or a shared folder). A failure in which every
/// replica answered (the work itself failed, or the weights diverged) fails the job as before.
/// </summary>
internal sealed class ElasticLearnerGroup : ILearnerEngine
{
    /// <summary>How long a new group waits for the surviving replicas to offer themselves again.</summary>
    static readonly TimeSpan Regroup = TimeSpan.FromSeconds(30);

    readonly ClusterLearnerGroup.FormContext _context;
    readonly List<LearnerGroupEngine> _retired = [];
    readonly string _snapshot;
    readonly ILoggingAdapter _log;
    LearnerGroupEngine _group;
    int _lost, _joined;

    public ElasticLearnerGroup(ClusterLearnerGroup.FormContext context, LearnerGroupEngine group)
    {
        (_context, _group) = (context, group);
        _snapshot = Path.Combine(context.Job.RunDirectory, "learner-group", "snapshot");
        _log = Logging.GetLogger(context.System, nameof(ElasticLearnerGroup));
    }

    JobSpec Job => _context.Job;
    /// <summary>The group training now (tests look at its size).</summary>
    internal LearnerGroupEngine Current => _group;

    public long PolicyVersion => _group.PolicyVersion;
    public long RewardModelVersion => _group.RewardModelVersion;
    public bool ExportsAdapterOnly => _group.ExportsAdapterOnly;
    public long AdapterBaseVersion => _group.AdapterBaseVersion;
    public string ModelHash => _group.Members[0].ModelHash;

    /// <summary>
    /// An offline stage is one call: a replica lost in it makes the survivors train the stage again from its start (the
    /// snapshot taken before it); the steps already reported are not reported again.
    /// </summary>
    public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken cancellationToken)
    {
        Snapshot();
        Join(stage, online: false);
        int reported = 0;
        void Progress(StageProgress p)
        {
            if (p.Step <= reported) return;
            reported = p.Step;
            progress(p);
        }
        while (true)
        {
            try { return _group.RunOfflineStage(stage, Progress, cancellationToken); }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && Lost(e, $"stage {stage.Name}", "the stage from its start"))
            {
                Reform(stage, expected: _group.Answered.Count(a => a), online: false);
            }
        }
    }

    public void BeginOnlineStage(StageSpec stage, bool resume = false) => _group.BeginOnlineStage(stage, resume);

    public PolicyUpdated Train(StageSpec stage, TrainOn experience)
    {
        Snapshot();
        Join(stage, online: true);
        while (true)
        {
            try
            {
                var updated = _group.Train(stage, experience);
                updated.Metrics["learners/lost"] = _lost;
                updated.Metrics["learners/joined"] = _joined;
                return updated;
            }
            catch (Exception e) when (Lost(e, $"the step on batch {experience.BatchId}", "it from the state before it"))
            {
                Reform(stage, expected: _group.Answered.Count(a => a), online: true);
            }
        }
    }

    /// <summary>True when the failed call lost replicas (counted and logged); false for a failure every replica answered.</summary>
    bool Lost(Exception e, string during, string again)
    {
        int lost = _group.Answered.Count(a => !a);
        if (lost == 0) return false;
        _lost += lost;
        _log.Warning("learner group: {0} replica(s) lost during {1} ({2}); training {3} with {4} learner(s)", lost, during, e.Message, again, _group.Size - lost);
        return true;
    }

    /// <summary>Replica nodes offering themselves while the group is short of <c>learners</c> join it now, from the snapshot.</summary>
    void Join(StageSpec stage, bool online)
    {
        if (_context.Roster.Pending == 0 || _group.Size >= Job.Learners) return;
        int before = _group.Size;
        Reform(stage, expected: Math.Min(Job.Learners - 1, before - 1 + _context.Roster.Pending), online);
        _joined += Math.Max(0, _group.Size - before);
    }

    /// <summary>The state before this step, where the group (re-formed) starts again.</summary>
    void Snapshot() => CheckpointLayout.WriteAtomically(_snapshot, _group.SaveCheckpoint);

    /// <summary>
    /// A new group from the replicas that offer themselves within <see cref="Regroup"/> (waiting for <paramref name="expected"/>),
    /// every member built from the snapshot and the online stage begun again from it. The old group's leader engine is kept
    /// until the job ends: rollout replicas in this process may still read the weights it shared.
    /// </summary>
    void Reform(StageSpec stage, int expected, bool online)
    {
        _group.Abandon();
        _retired.Add(_group);
        // Replicas still in the old group (a join, or a loss after which some finished the step) leave it and offer again.
        foreach (var member in _context.Roster.Members) member.Tell(new LeaveLearnerGroup(), Akka.Actor.ActorRefs.NoSender);
        _context.Roster.Members = [];
        var offers = _context.Roster.TakeUpTo(Job.Learners - 1, expected, Regroup);
        _group = ClusterLearnerGroup.Form(_context, _snapshot, offers);
        if (online) _group.BeginOnlineStage(stage, resume: true);
        _log.Info("learner group: {0} learner(s) now", _group.Size);
    }

    public byte[] ExportWeights(WeightKind kind) => _group.ExportWeights(kind);
    public LocalWeights? ShareWeights(WeightKind kind) => _group.ShareWeights(kind);
    public byte[] ExportAdapterBase() => _group.ExportAdapterBase();
    public LocalWeights? ShareAdapterBase() => _group.ShareAdapterBase();
    public EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts) => _group.Evaluate(stage, label, prompts);
    public void SaveCheckpoint(string directory) => _group.SaveCheckpoint(directory);

    public void Dispose()
    {
        _group.Dispose();
        foreach (var g in _retired) g.Members[0].Dispose();
        // The last step's state is in the run's checkpoints when it matters; the snapshot is only the group's.
        try { Directory.Delete(Path.GetDirectoryName(_snapshot)!, recursive: true); }
        catch (IOException) { }
    }
}
