using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Compute.Federated;
using Rlft.Actors.Protocol;
using Rlft.Policy.Training;

namespace Rlft.Actors.Runtime;

/// <summary>
/// A client node's member of the federation: offers itself to the coordinator (<see cref="JoinFederation"/>, every few
/// seconds until <see cref="FederationJoined"/>), and answers each <see cref="FederatedRoundRequest"/> with the update
/// its engine trained on this node's data — under secure aggregation, first a fresh public key, then, once
/// <see cref="FederatedRoundPeers"/> brings the round's keys, the update masked. Runs on a pinned dispatcher: a round's training blocks only this actor.
/// The coordinator refusing it (another model) or its engine failing to load stops the node with the reason.
/// </summary>
internal sealed class FederatedClientActor : ReceiveActor, IWithTimers
{
    /// <summary>How the reasons a client stops on its own begin (the node command exits 2 on them).</summary>
    public const string StopPrefix = "federated client stopped: ";

    readonly IActorRef _coordinator;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly FederatedClientEngine? _engine;
    bool _joined;
    Pending? _pending;
    string? _failure;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(Func<FederatedClientEngine> createEngine, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new FederatedClientActor(createEngine, coordinator)).WithDispatcher("rlft.compute-dispatcher");

    public FederatedClientActor(Func<FederatedClientEngine> createEngine, IActorRef coordinator)
    {
        _coordinator = coordinator;
        try { _engine = createEngine(); }
        catch (Exception e)
        {
            _failure = $"could not load the model: {e.Message}";
            ReceiveAny(_ => { });
            return;
        }
        var engine = _engine;
        Receive<Join>(_ => { if (!_joined) _coordinator.Tell(new JoinFederation(engine.Id, engine.ModelHash)); });
        Receive<FederationJoined>(_ =>
        {
            if (_joined) return;
            _joined = true;
            Timers.Cancel("join");
            _log.Info("federated client {0} joined the federation", engine.Id);
        });
        Receive<FederationRefused>(m => Stop($"the coordinator refused client {m.ClientId}: {m.Reason}"));
        Receive<FederatedRoundRequest>(request =>
        {
            ForgetPending();
            try
            {
                ECDiffieHellman? key = null;
                double weight = 0;
                if (request.Secure)
                {
                    // The key goes out before the training, so that the other clients' keys arrive while this one trains.
                    weight = engine.WeightFor(request);
                    key = SecureAggregation.NewKey();
                    Sender.Tell(new FederatedRoundKey(engine.Id, request.Stage, request.Round, request.Attempt, SecureAggregation.PublicKey(key), weight));
                }
                var started = DateTime.UtcNow;
                var update = engine.Train(request);
                _log.Info("federated round {0} (attempt {1}) of stage {2}: trained in {3:F1}s on {4} examples", request.Round + 1, request.Attempt + 1,
                    request.Stage, (DateTime.UtcNow - started).TotalSeconds, update.Samples);
                if (key is null) Sender.Tell(update);
                else _pending = new Pending(update, key, weight);   // sent masked once the round's keys are in
            }
            catch (Exception e)
            {
                // The round goes on without this client (min-clients; under secure aggregation it restarts), told why;
                // the node stays for later rounds.
                ForgetPending();
                _log.Error("federated round {0} of stage {1} failed on this client: {2}", request.Round + 1, request.Stage, e.Message);
                Sender.Tell(new FederatedRoundFailed(engine.Id, request.Stage, request.Round, request.Attempt, Reason(e)));
            }
        });
        Receive<FederatedRoundPeers>(peers =>
        {
            if (_pending is not { } pending || pending.Update.Round != peers.Round || pending.Update.Attempt != peers.Attempt || pending.Update.Stage != peers.Stage)
                return;   // for a round this client did not train (or no longer holds)
            try { Sender.Tell(FederatedClient.Mask(pending.Update, pending.Key, pending.Weight, peers)); }
            catch (Exception e)
            {
                _log.Error("federated round {0} of stage {1}: not sent: {2}", peers.Round + 1, peers.Stage, e.Message);
                Sender.Tell(new FederatedRoundFailed(pending.Update.ClientId, peers.Stage, peers.Round, peers.Attempt, Reason(e)));
            }
            finally { ForgetPending(); }
        });
        Receive<NoMoreWork>(m => Context.System.EventStream.Publish(m));   // the node learns the job ended
    }

    protected override void PreStart()
    {
        if (_failure is not null)
        {
            _log.Error("{0}", _failure);
            Context.System.EventStream.Publish(new NoMoreWork(StopPrefix + _failure));
            return;
        }
        Self.Tell(Join.Instance);
        Timers.StartPeriodicTimer("join", Join.Instance, TimeSpan.FromSeconds(2));
    }

    void Stop(string reason)
    {
        _log.Error("{0}", reason);
        Context.System.EventStream.Publish(new NoMoreWork(StopPrefix + reason));
        Timers.CancelAll();
        Become(() => ReceiveAny(_ => { }));
    }

    /// <summary>
    /// What a failure tells the server: the kind of error only. Its message stays in this node's log, since it may quote
    /// the node's data (a file's path and line, a field's value), and nothing of the data leaves a client.
    /// </summary>
    static string Reason(Exception e) => $"{e.GetType().Name} (the message is in the client's log; it is not sent, as it may quote the client's data)";

    /// <summary>Drops a trained update still waiting for its round's keys (a new request, or the keys came): its key is used once.</summary>
    void ForgetPending()
    {
        _pending?.Key.Dispose();
        _pending = null;
    }

    protected override void PostStop()
    {
        ForgetPending();
        _engine?.Dispose();
    }

    sealed record Pending(FederatedRoundUpdate Update, ECDiffieHellman Key, double Weight);

    sealed record Join : INoSerializationVerificationNeeded { public static readonly Join Instance = new(); }
}
