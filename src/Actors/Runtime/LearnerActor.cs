using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Telemetry;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Holds the learner engine (policy, value head, reference, reward model). Runs on a pinned dispatcher:
/// a training step blocks only this actor's own thread, never heartbeats or other actors. After every
/// update it hands the new weights to the weight server, which serves them in chunks.
/// </summary>
internal sealed class LearnerActor : ReceiveActor
{
    readonly ILearnerEngine? _engine;
    readonly JobSpec _job;
    readonly IActorRef _weightServer;
    readonly ILoggingAdapter _log = Context.GetLogger();

    public static Props Props(ILearnerEngine engine, JobSpec job, IActorRef weightServer, CancellationToken interrupt = default) =>
        Props(() => engine, job, weightServer, interrupt);

    /// <summary>
    /// <paramref name="createEngine"/> runs on the learner's own (pinned) thread as the actor starts: loading models
    /// never blocks the coordinator, and a failure to load ends the job with its message instead of a restart loop.
    /// </summary>
    public static Props Props(Func<ILearnerEngine> createEngine, JobSpec job, IActorRef weightServer, CancellationToken interrupt = default) =>
        Akka.Actor.Props.Create(() => new LearnerActor(createEngine, job, weightServer, interrupt)).WithDispatcher("rlft.compute-dispatcher");

    public LearnerActor(Func<ILearnerEngine> createEngine, JobSpec job, IActorRef weightServer, CancellationToken interrupt)
    {
        (_job, _weightServer) = (job, weightServer);
        try { _engine = createEngine(); }
        catch (Exception e)
        {
            // Every request is answered with the reason, so whoever asks (the coordinator) ends the job.
            string reason = $"could not load the models: {e.Message}";
            _log.Warning("learner: {0}", reason);
            Context.Parent.Tell(new LearnerFailed(-1, reason));
            ReceiveAny(_ => Sender.Tell(new LearnerFailed(-1, reason)));
            return;
        }
        var engine = _engine;
        if (engine.ExportsAdapterOnly) PublishAdapterBase();   // resumed mid-way through a LoRA stage: serve the base the adapters apply on
        Publish(WeightKind.Policy, engine.PolicyVersion);
        Publish(WeightKind.RewardModel, engine.RewardModelVersion);   // a resumed run's reward model (-1: none yet)

        Receive<RunOfflineStage>(m => Guard(m.Stage, () =>
        {
            var stage = _job.Stages[m.Stage];
            var sender = Sender;
            var done = engine.RunOfflineStage(stage, p => sender.Tell(p), interrupt);
            if (stage.Kind == StageKind.RewardModel) Publish(WeightKind.RewardModel, done.RewardModelVersion);
            else Publish(WeightKind.Policy, done.PolicyVersion);
            sender.Tell(done);
        }));
        Receive<BeginOnline>(m => Guard(m.Stage, () =>
        {
            engine.BeginOnlineStage(_job.Stages[m.Stage], m.Resume);
            // What replicas of this stage start from, shelved for it: the base its adapters attached to (read in place,
            // frozen from now on), or full weights as this stage's rollouts need them.
            if (engine.AdapterBaseVersion >= 0) PublishAdapterBase(reshelveOnly: true);
            else Publish(WeightKind.Policy, engine.PolicyVersion, reshelveOnly: true);
            Sender.Tell(new OnlineReady(m.Stage, engine.PolicyVersion));
        }));
        Receive<TrainOn>(m => Guard(m.Stage, () =>
        {
            var started = DateTime.UtcNow;
            PolicyUpdated updated;
            using (var span = RlftTelemetry.StartPhase(RlftTelemetry.Train, m.BatchId, m.Batch.PolicyVersion, m.Stage))
            {
                updated = engine.Train(_job.Stages[m.Stage], m);
                span?.SetTag("rlft.updated_version", updated.PolicyVersion);
            }
            RlftTelemetry.PhaseDone(RlftTelemetry.Train, (DateTime.UtcNow - started).TotalSeconds);
            Publish(WeightKind.Policy, updated.PolicyVersion);
            Sender.Tell(updated);
        }));
        Context.Parent.Tell(new LearnerModel(engine.ModelHash));
        Receive<BeginFederated>(m => Guard(m.Stage, () => Sender.Tell(new FederatedReady(m.Stage, engine.BeginFederated(_job.Stages[m.Stage])))));
        Receive<ApplyFederatedRound>(m => Guard(m.Stage, () =>
        {
            var (global, metrics) = engine.ApplyFederatedRound(_job.Stages[m.Stage], m.Round);
            Sender.Tell(new FederatedRoundApplied(m.Stage, m.Round.Round, global, metrics));
        }));
        Receive<EndFederated>(m => Guard(m.Stage, () =>
        {
            var done = engine.EndFederated(_job.Stages[m.Stage]);
            Publish(WeightKind.Policy, done.PolicyVersion);
            Sender.Tell(done);
        }));
        Receive<EvaluateWith>(m => Guard(m.Stage, () =>
            Sender.Tell(engine.Evaluate(m.Stage >= 0 ? _job.Stages[m.Stage] : null, m.Label, m.Prompts))));
        Receive<SaveCheckpoint>(m => Guard(-1, () =>
        {
            // A process killed mid-write leaves no half checkpoint for --resume to find.
            CheckpointLayout.WriteAtomically(m.Directory, partial =>
            {
                engine.SaveCheckpoint(partial);
                if (m.ResumeState is { } state) File.WriteAllText(Path.Combine(partial, ResumeState.FileName), state);
            });
            if (_job.KeepCheckpoints > 0) Prune(Path.GetDirectoryName(m.Directory)!, _job.KeepCheckpoints);
            Sender.Tell(new CheckpointSaved(m.Directory));
        }));
    }

    /// <summary>
    /// Hands the current version to the weight server: shelved as tensors for this process's replicas where the engine
    /// can share them (bytes are then packed only if a remote replica asks), else as bytes.
    /// </summary>
    void Publish(WeightKind kind, long version, bool reshelveOnly = false)
    {
        if (version < 0) return;
        var engine = _engine!;
        if (engine.ShareWeights(kind) is { } local)
        {
            Shelve(local);
            return;
        }
        if (reshelveOnly) return;
        bool adapterOnly = kind == WeightKind.Policy && engine.ExportsAdapterOnly;
        var blob = new WeightBlob(kind, version, engine.ExportWeights(kind), adapterOnly, baseVersion: adapterOnly ? engine.AdapterBaseVersion : -1);
        _weightServer.Tell(new ServeBlob(blob));
    }

    void PublishAdapterBase(bool reshelveOnly = false)
    {
        var engine = _engine!;
        if (engine.ShareAdapterBase() is { } local) Shelve(local);
        else if (!reshelveOnly)
            _weightServer.Tell(new ServeBlob(new WeightBlob(WeightKind.Policy, engine.AdapterBaseVersion, engine.ExportAdapterBase(), adapterOnly: false)));
    }

    void Shelve(LocalWeights local)
    {
        LocalWeightShelf.For(Context.System).Put(local);
        _weightServer.Tell(new ServeShelved(local.Kind, local.Version, local.AdapterOnly, local.BaseVersion));
    }

    /// <summary>
    /// keep-checkpoints: deletes all but the newest <paramref name="keep"/> checkpoints of this run (step-N,
    /// interrupted-step-N with a resume.json; newest by N, the global step). Checkpoints an earlier run left
    /// in the directory (no resume.json since this run started) are not this run's to delete. Runs on the
    /// learner's thread, after a save.
    /// </summary>
    internal static void Prune(string checkpoints, int keep)
    {
        static long StepOf(string dir) => long.TryParse(Path.GetFileName(dir).Split('-')[^1], out var n) ? n : -1;
        var complete = Directory.GetDirectories(checkpoints)
            .Where(d => !d.EndsWith(".partial", StringComparison.Ordinal) && StepOf(d) >= 0 && File.Exists(Path.Combine(d, ResumeState.FileName)))
            .OrderByDescending(StepOf).ThenByDescending(Directory.GetLastWriteTimeUtc)
            .ToList();
        foreach (var old in complete.Skip(keep)) Directory.Delete(old, recursive: true);
    }

    void Guard(int stage, Action work)
    {
        try { work(); }
        catch (Exception e)
        {
            Failures.Log(_log, e, $"learner failed in stage {stage}");
            Sender.Tell(new LearnerFailed(stage, e.Message));
        }
    }

    protected override void PostStop() => _engine?.Dispose();
}

/// <summary>Prepare an online stage.</summary>
internal sealed record BeginOnline(int Stage, bool Resume = false) : IRlftMessage;

/// <summary>The learner is ready for experience of an online stage.</summary>
internal sealed record OnlineReady(int Stage, long PolicyVersion) : IRlftMessage;

/// <summary>Evaluate on given held-out prompts.</summary>
internal sealed record EvaluateWith(int Stage, string Label, PromptItem[] Prompts) : IRlftMessage;
