using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Compute;
using Rlft.Actors.Protocol;
using Rlft.Actors.Telemetry;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Hosts the reward pipeline. When the pipeline scores with the job's reward model and a newer version
/// is published, it fetches the weights before scoring. Pinned dispatcher: reward-model forward passes
/// block only this thread.
/// </summary>
internal sealed class RewardActor : WeightFetchingActor
{
    readonly IRewardEngine _engine;
    readonly IActorRef _coordinator;
    readonly string _workerId;
    readonly ILoggingAdapter _log = Context.GetLogger();

    public static Props Props(IRewardEngine engine, IActorRef coordinator, string workerId) =>
        Akka.Actor.Props.Create(() => new RewardActor(engine, coordinator, workerId)).WithDispatcher("rlft.compute-dispatcher");

    public RewardActor(IRewardEngine engine, IActorRef coordinator, string workerId) : base(coordinator)
    {
        (_engine, _coordinator, _workerId) = (engine, coordinator, workerId);
        Ready();
    }

    protected override void PreStart() => _coordinator.Tell(new RegisterWorker(_workerId, "reward"));

    protected override void Ready()
    {
        Receive<ScoreBatch>(m =>
        {
            var sender = Sender;
            void Failed(string reason) => sender.Tell(new ScoreFailed(m.BatchId, reason));
            try
            {
                if (_engine.NeedsRewardModel && _engine.RewardModelVersion < m.RewardModelVersion)
                {
                    FetchThenRetry(WeightKind.RewardModel, m.RewardModelVersion, _engine.ApplyRewardModel, Failed,
                        _engine.AcceptsLocalWeights ? _engine.ApplyLocalRewardModel : null);
                    return;
                }
                ScoredBatch scored;
                using (RlftTelemetry.StartPhase(RlftTelemetry.Score, m.BatchId, m.Batch.PolicyVersion, m.Batch.Stage))
                    scored = _engine.ScoreAsync(m.Batch, CancellationToken.None).GetAwaiter().GetResult();
                RlftTelemetry.PhaseDone(RlftTelemetry.Score, scored.Seconds);
                sender.Tell(scored);
            }
            catch (Exception e)
            {
                // Every batch is answered, scored or failed: the coordinator never waits on a batch no one holds.
                Failures.Log(_log, e, $"scoring batch {m.BatchId} failed");
                Failed(e.Message);
            }
        });
        Receive<NoMoreWork>(m => Context.System.EventStream.Publish(m));   // the node learns the job ended
        Receive<WeightsPublished>(_ => { });
        Receive<LocalWeightsReady>(_ => { });
        Receive<WeightChunk>(_ => { });
        Receive<WeightsStreamed>(_ => { });
    }

    protected override void PostStop() => _engine.Dispose();
}
