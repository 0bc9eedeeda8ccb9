using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Holds the learner engine (policy, value head, reference, reward model). Runs on a pinned dispatcher:
/// a training step blocks only this actor's own thread, never heartbeats or other actors. After every
/// update it hands the new weights to the weight server, which serves them in chunks.
/// </summary>
public sealed class LearnerActor : ReceiveActor
{
    readonly ILearnerEngine _engine;
    readonly JobSpec _job;
    readonly IActorRef _weightServer;
    readonly ILoggingAdapter _log = Context.GetLogger();

    public static Props Props(ILearnerEngine engine, JobSpec job, IActorRef weightServer, CancellationToken interrupt = default) =>
        Akka.Actor.Props.Create(() => new LearnerActor(engine, job, weightServer, interrupt)).WithDispatcher("rlft.compute-dispatcher");

    public LearnerActor(ILearnerEngine engine, JobSpec job, IActorRef weightServer, CancellationToken interrupt)
    {
        (_engine, _job, _weightServer) = (engine, job, weightServer);
        Publish(WeightKind.Policy, _engine.PolicyVersion);

        Receive<RunOfflineStage>(m => Guard(m.Stage, () =>
        {
            var stage = _job.Stages[m.Stage];
            var sender = Sender;
            var done = _engine.RunOfflineStage(stage, p => sender.Tell(p), interrupt);
            if (stage.Kind == StageKind.RewardModel) Publish(WeightKind.RewardModel, done.RewardModelVersion);
            else Publish(WeightKind.Policy, done.PolicyVersion);
            sender.Tell(done);
        }));
        Receive<BeginOnline>(m => Guard(m.Stage, () =>
        {
            _engine.BeginOnlineStage(_job.Stages[m.Stage]);
            Sender.Tell(new OnlineReady(m.Stage, _engine.PolicyVersion));
        }));
        Receive<TrainOn>(m => Guard(m.Stage, () =>
        {
            var updated = _engine.Train(_job.Stages[m.Stage], m);
            Publish(WeightKind.Policy, updated.PolicyVersion);
            Sender.Tell(updated);
        }));
        Receive<EvaluateWith>(m => Guard(m.Stage, () =>
            Sender.Tell(_engine.Evaluate(m.Stage >= 0 ? _job.Stages[m.Stage] : null, m.Label, m.Prompts))));
        Receive<SaveCheckpoint>(m => Guard(-1, () =>
        {
            _engine.SaveCheckpoint(m.Directory);
            Sender.Tell(new CheckpointSaved(m.Directory));
        }));
    }

    void Publish(WeightKind kind, long version)
    {
        if (version < 0) return;
        bool adapterOnly = kind == WeightKind.Policy && _engine.ExportsAdapterOnly;
        var blob = new WeightBlob(kind, version, _engine.ExportWeights(kind), adapterOnly, baseVersion: adapterOnly ? _engine.AdapterBaseVersion : -1);
        _weightServer.Tell(new ServeBlob(blob));
    }

    void Guard(int stage, Action work)
    {
        try { work(); }
        catch (Exception e)
        {
            _log.Error(e, "learner failed in stage {0}", stage);
            Sender.Tell(new LearnerFailed(stage, e.Message));
        }
    }

    protected override void PostStop() => _engine.Dispose();
}

/// <summary>Prepare an online stage.</summary>
public sealed record BeginOnline(int Stage) : IRlftMessage;

/// <summary>The learner is ready for experience of an online stage.</summary>
public sealed record OnlineReady(int Stage, long PolicyVersion) : IRlftMessage;

/// <summary>Evaluate on given held-out prompts.</summary>
public sealed record EvaluateWith(int Stage, string Label, PromptItem[] Prompts) : IRlftMessage;
