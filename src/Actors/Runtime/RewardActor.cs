using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Compute;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Hosts the reward pipeline. When the pipeline scores with the job's reward model and a newer version
/// is published, it fetches the weights before scoring. Pinned dispatcher: reward-model forward passes
/// block only this thread.
/// </summary>
public sealed class RewardActor : ReceiveActor, IWithStash
{
    readonly IRewardEngine _engine;
    readonly IActorRef _coordinator;
    readonly string _workerId;
    readonly ILoggingAdapter _log = Context.GetLogger();
    WeightFetcher? _fetcher;
    IActorRef _weightServer = ActorRefs.Nobody;
    long _wanted;

    public IStash Stash { get; set; } = null!;

    public static Props Props(IRewardEngine engine, IActorRef coordinator, string workerId) =>
        Akka.Actor.Props.Create(() => new RewardActor(engine, coordinator, workerId)).WithDispatcher("rlft.compute-dispatcher");

    public RewardActor(IRewardEngine engine, IActorRef coordinator, string workerId)
    {
        (_engine, _coordinator, _workerId) = (engine, coordinator, workerId);
        Ready();
    }

    protected override void PreStart() => _coordinator.Tell(new RegisterWorker(_workerId, "reward"));

    void Ready()
    {
        Receive<ScoreBatch>(m =>
        {
            if (_engine.NeedsRewardModel && _engine.RewardModelVersion < m.RewardModelVersion)
            {
                Stash.Stash();
                _wanted = m.RewardModelVersion;
                _coordinator.Tell(new QueryWeights(WeightKind.RewardModel));
                Become(Fetching);
                return;
            }
            try
            {
                Sender.Tell(_engine.ScoreAsync(m.Batch, CancellationToken.None).GetAwaiter().GetResult());
            }
            catch (Exception e)
            {
                _log.Error(e, "scoring batch {0} failed", m.BatchId);
                Sender.Tell(new ScoreFailed(m.BatchId, e.Message));
            }
        });
        Receive<RegisterAgain>(_ => _coordinator.Tell(new RegisterWorker(_workerId, "reward")));
    }

    void Fetching()
    {
        Receive<WeightsPublished>(a =>
        {
            if (a.Version < _wanted) { Context.System.Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(200), _coordinator, new QueryWeights(WeightKind.RewardModel), Self); return; }
            _weightServer = Sender;
            _fetcher = new WeightFetcher(a);
            _fetcher.Pump(_weightServer, Self);
        });
        Receive<WeightChunk>(c =>
        {
            if (_fetcher?.Accept(c, _weightServer, Self) is not { } blob) return;
            _engine.ApplyRewardModel(_fetcher.Announcement.Version, blob);
            _fetcher = null;
            Become(Ready);
            Stash.UnstashAll();
        });
        Receive<WeightsUnavailable>(_ =>
            Context.System.Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(200), _coordinator, new QueryWeights(WeightKind.RewardModel), Self));
        Receive<ScoreBatch>(_ => Stash.Stash());
    }

    protected override void PostStop() => _engine.Dispose();
}

/// <summary>Ask a reward actor to register again (after the coordinator moved or restarted).</summary>
public sealed record RegisterAgain : IRlftMessage;
