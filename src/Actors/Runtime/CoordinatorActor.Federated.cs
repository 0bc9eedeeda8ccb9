using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Compute.Federated;
using Rlft.Actors.Coordination;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.Runtime;

/// <summary>
/// The coordinator's shell around a federated stage: <see cref="FederatedStageDriver"/> decides, this part sends.
/// Clients offer themselves with <see cref="JoinFederation"/> (admitted when their model structure matches the
/// learner's) and are watched: a client whose node leaves the cluster (or is downed after a crash) is Down for the
/// driver. A round's global weights go to the sampled clients, their updates to the driver, the driver's aggregate to
/// the learner (<see cref="FederatedServer"/>), and the round's figures — participants, samples, bytes sent and
/// received, the clients' losses, ε — to metrics.jsonl and TensorBoard as one step of the stage.
/// </summary>
internal sealed partial class CoordinatorActor
{
    // Clients that joined: their actor by id, and the id by actor (for Terminated). Kept across stages.
    readonly Dictionary<string, IActorRef> _clients = new(StringComparer.Ordinal);
    readonly Dictionary<IActorRef, string> _clientIds = new();
    // Joins heard before the learner said what its model is.
    readonly Dictionary<string, (IActorRef Client, JoinFederation Join)> _pendingJoins = new(StringComparer.Ordinal);
    string? _modelHash;
    FederatedStageDriver? _federated;
    float[] _global = [];
    Dictionary<string, double> _aggregating = new();
    int _bytesRound = -1;
    long _roundBytesSent, _stageBytesSent, _stageBytesReceived, _foreignUpdates;
    string? _waitingFor;
    // Clients refused (their model differs), by id, until one joins under that id: a wait for clients names them.
    readonly SortedDictionary<string, string> _refused = new(StringComparer.Ordinal);
    DateTime _waitLogged;

    static readonly TimeSpan WaitLogEvery = TimeSpan.FromSeconds(30);

    void ReceiveFederated()
    {
        Receive<LearnerModel>(m =>
        {
            _modelHash = m.ModelHash;
            foreach (var (client, join) in _pendingJoins.Values.ToList()) Admit(join, client);
            _pendingJoins.Clear();
        });
        Receive<JoinFederation>(j =>
        {
            if (_modelHash is null) _pendingJoins[j.ClientId] = (Sender, j);
            else Admit(j, Sender);
        });
        Receive<FederatedReady>(OnFederatedReady);
        Receive<FederatedRoundUpdate>(OnRoundUpdate);
        Receive<FederatedRoundKey>(OnRoundKey);
        Receive<FederatedRoundFailed>(OnRoundFailed);
        Receive<FederatedRoundApplied>(OnRoundApplied);
    }

    void Admit(JoinFederation join, IActorRef client)
    {
        string id = join.ClientId;
        if (ModelStructure.Mismatch(join.ModelHash, _modelHash!) is { } why)
        {
            _log.Warning("federated client {0} refused: {1}", id, why);
            _refused[id] = why;
            client.Tell(new FederationRefused(id, why));
            return;
        }
        client.Tell(new FederationJoined(id));
        _refused.Remove(id);
        if (_clients.TryGetValue(id, out var known) && known.Equals(client)) return;   // a repeated join
        if (known is not null) { _clientIds.Remove(known); Context.Unwatch(known); }   // the same node, restarted
        _clients[id] = client;
        _clientIds[client] = id;
        Context.Watch(client);
        _log.Info("federated client {0} joined ({1} client(s) now)", id, _clients.Count);
        if (_federated is not null) Carry(_federated.ClientUp(id, DateTime.UtcNow));
    }

    /// <summary>A watched client is gone; true when <paramref name="actor"/> was one.</summary>
    bool ClientLeft(IActorRef actor)
    {
        if (!_clientIds.Remove(actor, out var id)) return false;
        _clients.Remove(id);
        _log.Warning("federated client {0} left ({1} client(s) now)", id, _clients.Count);
        if (_federated is not null) Carry(_federated.ClientDown(id, DateTime.UtcNow));
        return true;
    }

    void StartFederated(int index)
    {
        var spec = _stage!.Federated!;
        _federated = new FederatedStageDriver(spec, _job.Seed + index);
        (_bytesRound, _roundBytesSent, _stageBytesSent, _stageBytesReceived, _foreignUpdates, _waitingFor) = (-1, 0, 0, 0, 0, null);
        _learner.Tell(new BeginFederated(index));
    }

    void OnFederatedReady(FederatedReady ready)
    {
        if (_federated is null || ready.Stage != _stageIndex) return;
        _global = ready.Global;
        var now = DateTime.UtcNow;
        foreach (var id in _clients.Keys) _federated.ClientUp(id, now);
        var spec = _stage!.Federated!;
        // A round's weights travel as one message: one that the transport would drop must stop the job now, not after every retry.
        long size = WireBytes(new FederatedRoundRequest(_stageIndex, 0, 0, _global, 0));
        long frame = Context.System.Settings.Config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") ?? 128000;
        if (size > frame)
        {
            Finish(false, $"stage {_stage.Name}: the global weights take {size} bytes per message, above akka.remote.dot-netty.tcp.maximum-frame-size ({frame}); train LoRA adapters (rlft.job.lora) or use a smaller model");
            return;
        }
        _log.Info("federated stage {0}: {1} rounds of {2} client(s) ({3} joined so far), {4} weights of {5} bytes to each",
            _stage.Name, spec.Rounds, spec.ClientsPerRound, _clients.Count, _global.Length, _global.Length * 4L);
        Carry(_federated.Begin(now));
    }

    void OnRoundUpdate(FederatedRoundUpdate u)
    {
        // Only a joined client's own update for this stage reaches the driver (which discards late and repeated ones).
        if (!FromJoinedClient(u.ClientId, u.Stage)) return;
        var update = new ClientUpdate(u.ClientId, u.Round, u.Attempt, u.Delta, u.Masked.Length > 0 ? u.Masked : null, u.Samples, u.Metrics, WireBytes(u));
        Carry(_federated.Update(update, DateTime.UtcNow));
    }

    /// <summary>
    /// Whether a client's round message is its own (the sender is the actor that joined under that id) and for the
    /// running federated stage; anything else is counted as foreign and dropped.
    /// </summary>
    [MemberNotNullWhen(true, nameof(_federated))]
    bool FromJoinedClient(string id, int stage)
    {
        if (_federated is not null && stage == _stageIndex && _clients.TryGetValue(id, out var client) && client.Equals(Sender)) return true;
        _foreignUpdates++;
        return false;
    }

    void OnRoundKey(FederatedRoundKey k)
    {
        if (!FromJoinedClient(k.ClientId, k.Stage)) return;
        Carry(_federated.Key(k.ClientId, k.Round, k.Attempt, k.PublicKey, k.Weight, WireBytes(k)));
    }

    void OnRoundFailed(FederatedRoundFailed f)
    {
        if (!FromJoinedClient(f.ClientId, f.Stage)) return;
        _log.Warning("federated round {0} (attempt {1}): client {2} failed: {3}", f.Round + 1, f.Attempt + 1, f.ClientId, f.Reason);
        Carry(_federated.Failed(f.ClientId, f.Round, f.Attempt, f.Reason, DateTime.UtcNow));
    }

    void OnRoundApplied(FederatedRoundApplied applied)
    {
        if (_federated is null || applied.Stage != _stageIndex) return;
        _global = applied.Global;
        if (_stage!.Kind != StageKind.RewardModel) _policyVersion++;   // the learner made a new version of the policy (a reward model's version counts at the stage's end)
        var metrics = new Dictionary<string, double>(_aggregating);
        foreach (var (k, v) in applied.Metrics) metrics.TryAdd(k, v);
        metrics["federated/bytes_sent"] = _roundBytesSent;
        metrics["federated/foreign_updates"] = _foreignUpdates;
        _stageBytesSent += _roundBytesSent;
        _stageBytesReceived += (long)metrics.GetValueOrDefault("federated/bytes_received");
        _log.Info("federated round {0} of {1} aggregated: {2} participant(s), {3} samples",
            applied.Round + 1, _stage!.Federated!.Rounds, metrics["federated/participants"], metrics["federated/samples"]);
        Record(metrics, applied.Round + 1, _stage.Federated.Rounds);
        Carry(_federated.Aggregated(DateTime.UtcNow));
    }

    /// <summary>Carries out what the driver decided.</summary>
    void Carry(FederatedCommand? command)
    {
        var stage = _stage!;
        switch (command)
        {
            case null: return;
            case StartRound start:
                _waitingFor = null;
                if (_bytesRound != start.Round) (_bytesRound, _roundBytesSent) = (start.Round, 0);
                var request = new FederatedRoundRequest(_stageIndex, start.Round, start.Attempt, _global, stage.Federated!.Privacy?.ClipNorm ?? 0,
                    stage.Federated.SecureAggregation);
                long size = WireBytes(request);
                foreach (var id in start.Clients)
                    if (_clients.TryGetValue(id, out var client))
                    {
                        client.Tell(request);
                        _roundBytesSent += size;
                    }
                _log.Info("federated round {0} of {1}{2}: sent the global weights to {3}", start.Round + 1, stage.Federated.Rounds,
                    start.Attempt > 0 ? $" (attempt {start.Attempt + 1})" : "", string.Join(", ", start.Clients));
                return;
            case ExchangeKeys keys:
                var peers = new FederatedRoundPeers(_stageIndex, keys.Round, keys.Attempt, new(keys.PublicKeys, StringComparer.Ordinal), keys.TotalWeight);
                long peersSize = WireBytes(peers);
                foreach (var id in keys.Clients)
                    if (_clients.TryGetValue(id, out var client))
                    {
                        client.Tell(peers);
                        _roundBytesSent += peersSize;
                    }
                return;
            case AggregateRound round:
                _aggregating = round.Figures;
                _learner.Tell(new ApplyFederatedRound(_stageIndex, round));
                return;
            case WaitForClients wait:
                if (_waitingFor == wait.Reason) return;
                (_waitingFor, _waitLogged) = (wait.Reason, DateTime.UtcNow);
                _log.Warning("federated stage {0} waits for clients: {1}{2} (start them with: rlft node --roles client --data PATH --seed-nodes …)", stage.Name, wait.Reason, Refused());
                return;
            case FailStage fail:
                Finish(false, $"stage {stage.Name}: {fail.Reason}");
                return;
            case FinishStage:
                _learner.Tell(new EndFederated(_stageIndex));
                return;
        }
    }

    void FederatedTick(DateTime now)
    {
        if (_federated is null || _finished) return;
        Carry(_federated.Tick(now));
        if (_waitingFor is not null && now - _waitLogged >= WaitLogEvery)
        {
            _waitLogged = now;
            _log.Warning("federated stage {0} still waits for clients: {1}{2}", _stage!.Name, _waitingFor, Refused());
        }
    }

    /// <summary>The clients refused so far, for a wait's message (empty when none was).</summary>
    string Refused() => _refused.Count == 0 ? ""
        : $"; refused {_refused.Count} client(s): {string.Join("; ", _refused.Select(r => $"{r.Key} ({r.Value})"))}";

    /// <summary>The federated stage's totals into the summary, once its held-out figures are in.</summary>
    void FederatedStageEnded()
    {
        if (_federated is not { } driver) return;
        string name = _stage!.Name;
        _summary[$"{name}/federated/rounds"] = driver.Round;
        _summary[$"{name}/federated/retries"] = driver.Retries;
        _summary[$"{name}/federated/late_discarded"] = driver.LateDiscarded;
        _summary[$"{name}/federated/duplicates"] = driver.Duplicates;
        _summary[$"{name}/federated/malformed"] = driver.Malformed;
        _summary[$"{name}/federated/bytes_sent"] = _stageBytesSent;
        _summary[$"{name}/federated/bytes_received"] = _stageBytesReceived;
        if (driver.Epsilon is { } eps) _summary[$"{name}/privacy/epsilon"] = eps;
        _federated = null;
    }

    /// <summary>The message's size on the wire (what the cluster's serializer makes of it).</summary>
    long WireBytes(object message) => Context.System.Serialization.FindSerializerFor(message).ToBinary(message).Length;
}
