using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Compute;
using Rlft.Actors.Protocol;
using Rlft.Actors.Telemetry;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>
/// A rollout worker: pulls work from the coordinator, makes sure its policy replica holds the version
/// the work asks for (fetching chunks from the weight server when it does not), generates, and reports
/// the batch. Runs on a pinned dispatcher, so generation blocks only its own thread. Weights switch
/// between batches, never during one.
/// </summary>
internal sealed class RolloutActor : WeightFetchingActor
{
    readonly IRolloutEngine _engine;
    readonly IActorRef _coordinator;
    readonly string _workerId;
    readonly ILoggingAdapter _log = Context.GetLogger();

    public static Props Props(IRolloutEngine engine, IActorRef coordinator, string workerId) =>
        Akka.Actor.Props.Create(() => new RolloutActor(engine, coordinator, workerId)).WithDispatcher("rlft.compute-dispatcher");

    public RolloutActor(IRolloutEngine engine, IActorRef coordinator, string workerId) : base(coordinator)
    {
        (_engine, _coordinator, _workerId) = (engine, coordinator, workerId);
        Ready();
    }

    protected override void PreStart() => AskForWork();

    protected override long BaseVersion(WeightKind kind) => kind == WeightKind.Policy ? _engine.BaseVersion : -1;

    // Set when the node leaves the cluster: finish the batch in hand, take no new one.
    bool _draining;

    void AskForWork()
    {
        if (!_draining) _coordinator.Tell(new RequestWork(_workerId, _engine.PolicyVersion));
    }

    protected override void Ready()
    {
        Receive<GenerateRollouts>(work =>
        {
            // Leaving: not taken; the coordinator re-issues it when this worker is gone.
            if (_draining) return;
            if (_engine.PolicyVersion >= work.PolicyVersion) Generate(work);
            else FetchThenRetry(WeightKind.Policy, work.PolicyVersion, _engine.ApplyWeights, reason => Failed(work, reason),   // a newer policy exists
                _engine.AcceptsLocalWeights ? _engine.ApplyLocal : null);
        });
        Receive<NoMoreWork>(m => Context.System.EventStream.Publish(m));   // the node learns the job ended
        // Processed between batches (generation blocks this actor), so the batch in hand is already reported.
        Receive<Drain>(_ => { _draining = true; Sender.Tell(Drained.Instance); });
        Receive<WeightsPublished>(_ => { });
        Receive<LocalWeightsReady>(_ => { });
        Receive<WeightChunk>(_ => { });
        Receive<WeightsStreamed>(_ => { });
    }

    void Generate(GenerateRollouts work)
    {
        var started = DateTime.UtcNow;
        try
        {
            RolloutSample[] samples;
            using (RlftTelemetry.StartPhase(RlftTelemetry.Generate, work.BatchId, _engine.PolicyVersion, work.Stage))
                samples = _engine.Generate(work.Prompts, work.Sampling, work.Seed);
            RlftTelemetry.PhaseDone(RlftTelemetry.Generate, (DateTime.UtcNow - started).TotalSeconds);
            _coordinator.Tell(new RolloutBatch(work.BatchId, work.Stage, _engine.PolicyVersion, _workerId, samples, (DateTime.UtcNow - started).TotalSeconds));
        }
        catch (Exception e)
        {
            Failures.Log(_log, e, $"rollout batch {work.BatchId} failed");
            Failed(work, e.Message);
            return;
        }
        AskForWork();
    }

    void Failed(GenerateRollouts work, string reason)
    {
        _coordinator.Tell(new RolloutFailed(work.BatchId, _workerId, reason));
        AskForWork();
    }

    protected override void PostStop() => _engine.Dispose();
}

/// <summary>The node is leaving: finish the batch in hand and take no more (local, from the node's shutdown).</summary>
internal sealed record Drain : INoSerializationVerificationNeeded { public static readonly Drain Instance = new(); }

/// <summary>The rollout actor holds no work and asks for none.</summary>
internal sealed record Drained : INoSerializationVerificationNeeded { public static readonly Drained Instance = new(); }
