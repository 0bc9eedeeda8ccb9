using Rlft.Actors.Jobs;
using Rlft.Policy.Training;

namespace Rlft.Actors.Coordination;

/// <summary>What the coordinator does next for a federated stage (the driver's decisions, carried out as messages).</summary>
internal abstract record FederatedCommand;

/// <summary>Send the global weights of <paramref name="Round"/> to each of <paramref name="Clients"/>; their updates are due by <paramref name="Deadline"/>.</summary>
internal sealed record StartRound(int Round, int Attempt, IReadOnlyList<string> Clients, DateTime Deadline) : FederatedCommand;

/// <summary>Aggregate these updates into the global weights (the learner does it), then call <see cref="FederatedStageDriver.Aggregated"/>.</summary>
internal sealed record AggregateRound(int Round, int Attempt, IReadOnlyList<ClientUpdate> Updates, Dictionary<string, double> Figures) : FederatedCommand;

/// <summary>
/// Secure aggregation: every sampled client sent its round key; send each of them all the keys and the weights' total
/// (<see cref="Protocol.FederatedRoundPeers"/>), after which they mask and send their updates.
/// </summary>
internal sealed record ExchangeKeys(int Round, int Attempt, IReadOnlyList<string> Clients, IReadOnlyDictionary<string, byte[]> PublicKeys, double TotalWeight)
    : FederatedCommand;

/// <summary>Not enough clients are Up to start a round; the reason says how many are and how many are needed.</summary>
internal sealed record WaitForClients(string Reason) : FederatedCommand;

/// <summary>The stage cannot complete (a round failed every attempt).</summary>
internal sealed record FailStage(string Reason) : FederatedCommand;

/// <summary>Every round is aggregated.</summary>
internal sealed record FinishStage : FederatedCommand;

/// <summary>
/// One client's answer in a round: its update (plain floats, or the masked fixed-point words of secure aggregation),
/// how many examples it trained on, what it measured, and what the message cost on the wire.
/// </summary>
internal sealed record ClientUpdate(string ClientId, int Round, int Attempt, float[]? Delta, long[]? Masked, double Samples,
    IReadOnlyDictionary<string, double> Metrics, long Bytes);

/// <summary>
/// A federated stage as a state machine without actors. Each round samples <c>clients-per-round</c> of the clients
/// that are Up (<see cref="ClientSampler"/>), waits until each sampled client answered or <c>round-deadline</c>
/// passed, and aggregates when at least <c>min-clients</c> updates arrived; otherwise the round is retried with a new
/// sample, up to <c>round-retries</c> times. Under secure aggregation a round has two phases: each sampled client
/// sends a fresh public key and its weight, and once every key is in the clients get them all
/// (<see cref="ExchangeKeys"/>) and send masked updates, which only sum to something when every sampled client's is in. An update for another round or attempt, from a client not sampled, or a
/// second one from the same client is discarded and counted — never aggregated. A client that leaves mid-round is no
/// longer waited for; under secure aggregation its masks would not cancel, so the round restarts without it. A client
/// that comes back is sampled again in later rounds. Under privacy, ε (RDP accountant) is reported after every round.
/// </summary>
internal sealed class FederatedStageDriver
{
    readonly FederatedSpec _spec;
    readonly ClientSampler _sampler;
    readonly SortedSet<string> _up = new(StringComparer.Ordinal);
    readonly Dictionary<string, ClientUpdate> _received = new();
    readonly Dictionary<string, (byte[] Key, double Weight)> _keys = new(StringComparer.Ordinal);
    bool _keysSent;
    long _keyBytes;
    readonly HashSet<string> _gone = new();
    // Why sampled clients of the current attempt could not take part (FederatedRoundFailed), by client.
    readonly SortedDictionary<string, string> _failed = new(StringComparer.Ordinal);
    readonly RdpAccountant? _accountant;
    IReadOnlyList<string> _sample = [];
    DateTime _deadline;
    bool _aggregating, _begun, _started;

    public int Round { get; private set; }
    public int Attempt { get; private set; }
    /// <summary>Waiting for clients' updates (between <see cref="StartRound"/> and its aggregation or retry).</summary>
    public bool InRound { get; private set; }
    public bool Done => Round >= _spec.Rounds;
    public long LateDiscarded { get; private set; }
    public long Duplicates { get; private set; }
    public long Retries { get; private set; }
    public IReadOnlyCollection<string> Up => _up;

    public FederatedStageDriver(FederatedSpec spec, int seed)
    {
        _spec = spec;
        _sampler = new ClientSampler(spec.ClientsPerRound, seed);
        _accountant = spec.Privacy is null ? null : new RdpAccountant();
    }

    /// <summary>ε so far at the privacy section's δ (null without privacy).</summary>
    public double? Epsilon => _accountant?.Epsilon(_spec.Privacy!.Delta);

    /// <summary>A client is Up (joined, or came back).</summary>
    public FederatedCommand? ClientUp(string id, DateTime now)
    {
        _up.Add(id);
        _gone.Remove(id);
        return !_begun || InRound || _aggregating || Done ? null : TryStart(now);
    }

    /// <summary>A client left or crashed: not waited for; under secure aggregation a round it was in restarts without it.</summary>
    public FederatedCommand? ClientDown(string id, DateTime now)
    {
        _up.Remove(id);
        // An update already in is kept: a masked one carries its masks, so the sum still cancels.
        if (!InRound || !_sample.Contains(id) || _received.ContainsKey(id)) return null;
        _gone.Add(id);
        if (_spec.SecureAggregation) return Retry(now, $"client {id} left after the masks were agreed");
        return AllAnswered() ? Close(now) : null;
    }

    /// <summary>The first round (call once the stage begins).</summary>
    public FederatedCommand Begin(DateTime now)
    {
        _begun = true;
        return Done ? new FinishStage() : TryStart(now);
    }

    /// <summary>
    /// Secure aggregation: a sampled client's key for the current round and attempt (<paramref name="bytes"/> on the
    /// wire). Once every sampled client's key is in: <see cref="ExchangeKeys"/>.
    /// </summary>
    public FederatedCommand? Key(string id, int round, int attempt, byte[] publicKey, double weight, long bytes)
    {
        if (!_spec.SecureAggregation || !InRound || _keysSent || round != Round || attempt != Attempt || !_sample.Contains(id) || _gone.Contains(id))
        {
            LateDiscarded++;
            return null;
        }
        if (!(weight > 0) || double.IsInfinity(weight) || publicKey.Length == 0) { Malformed++; return null; }
        if (!_keys.TryAdd(id, (publicKey, weight))) { Duplicates++; return null; }
        _keyBytes += bytes;
        if (_keys.Count < _sample.Count) return null;
        _keysSent = true;
        return new ExchangeKeys(Round, Attempt, _sample, _keys.ToDictionary(k => k.Key, k => k.Value.Key, StringComparer.Ordinal), _keys.Values.Sum(k => k.Weight));
    }

    /// <summary>
    /// A sampled client of the current round and attempt could not take part (<paramref name="reason"/>): it is not
    /// waited for; under secure aggregation the round restarts without it. The reason goes into the stage's failure
    /// message should the round not complete.
    /// </summary>
    public FederatedCommand? Failed(string id, int round, int attempt, string reason, DateTime now)
    {
        if (!InRound || round != Round || attempt != Attempt || !_sample.Contains(id) || _received.ContainsKey(id) || _gone.Contains(id))
        {
            LateDiscarded++;
            return null;
        }
        _gone.Add(id);
        _failed[id] = reason;
        if (_spec.SecureAggregation) return Retry(now, $"client {id} failed: {reason}");
        return AllAnswered() ? Close(now) : null;
    }

    /// <summary>Updates of the wrong form: plain under secure aggregation (or before the keys went out), masked without it, or a key with no weight.</summary>
    public long Malformed { get; private set; }

    /// <summary>An update arrived: kept if it is the first from a sampled client for the current round and attempt.</summary>
    public FederatedCommand? Update(ClientUpdate update, DateTime now)
    {
        if (!InRound || update.Round != Round || update.Attempt != Attempt || !_sample.Contains(update.ClientId) || _gone.Contains(update.ClientId))
        {
            LateDiscarded++;
            return null;
        }
        bool masked = update.Masked is not null;
        if (masked != _spec.SecureAggregation || (masked && (!_keysSent || update.Delta is { Length: > 0 })) || (!masked && update.Delta is null))
        {
            Malformed++;
            return null;
        }
        if (!_received.TryAdd(update.ClientId, update)) { Duplicates++; return null; }
        return AllAnswered() ? Close(now) : null;
    }

    /// <summary>Time passes: at the deadline the round aggregates what arrived, or is retried.</summary>
    public FederatedCommand? Tick(DateTime now) => InRound && now >= _deadline ? Close(now) : null;

    /// <summary>The learner applied the round's aggregate: the next round starts, or the stage ends.</summary>
    public FederatedCommand Aggregated(DateTime now)
    {
        _aggregating = false;
        Round++;
        Attempt = 0;
        return Done ? new FinishStage() : TryStart(now);
    }

    bool AllAnswered() => _sample.All(id => _received.ContainsKey(id) || _gone.Contains(id));

    FederatedCommand Close(DateTime now)
    {
        bool enough = _received.Count >= _spec.MinClients && (!_spec.SecureAggregation || _received.Count == _sample.Count);
        if (!enough)
            return Retry(now, $"{_received.Count} of {_sample.Count} sampled clients answered in time (min-clients = {_spec.MinClients})"
                + (_failed.Count == 0 ? "" : "; " + string.Join("; ", _failed.Select(f => $"client {f.Key} failed: {f.Value}"))));
        InRound = false;
        _aggregating = true;
        var updates = _received.Values.OrderBy(u => u.ClientId, StringComparer.Ordinal).ToList();
        _accountant?.Step(_spec.SamplingRate, _spec.Privacy!.NoiseMultiplier);
        var figures = new Dictionary<string, double>
        {
            ["federated/round"] = Round,
            ["federated/attempt"] = Attempt,
            ["federated/participants"] = updates.Count,
            ["federated/sampled"] = _sample.Count,
            ["federated/samples"] = updates.Sum(u => u.Samples),
            ["federated/bytes_received"] = updates.Sum(u => u.Bytes) + _keyBytes,
            ["federated/late_discarded"] = LateDiscarded,
            ["federated/duplicates"] = Duplicates,
            ["federated/malformed"] = Malformed,
            ["federated/retries"] = Retries,
        };
        foreach (var key in updates.SelectMany(u => u.Metrics.Keys).Distinct().Order(StringComparer.Ordinal))
            figures[key] = updates.Where(u => u.Metrics.ContainsKey(key)).Average(u => u.Metrics[key]);
        if (Epsilon is { } eps) figures["privacy/epsilon"] = eps;
        ClearRound();
        return new AggregateRound(Round, Attempt, updates, figures);
    }

    FederatedCommand Retry(DateTime now, string why)
    {
        InRound = false;
        ClearRound();
        if (Attempt >= _spec.RoundRetries)
            return new FailStage($"federated round {Round} failed {Attempt + 1} times; the last: {why}");
        Attempt++;
        Retries++;
        return TryStart(now);
    }

    void ClearRound()
    {
        _received.Clear();
        _failed.Clear();
        _keys.Clear();
        (_keysSent, _keyBytes) = (false, 0);
    }

    FederatedCommand TryStart(DateTime now)
    {
        if (!_started && _up.Count < _spec.StartClients)
            return new WaitForClients($"round {Round}: {_up.Count} client(s) Up, start-clients = {_spec.StartClients} needed before the first round; waiting for more to join");
        if (_up.Count < _spec.MinClients)
            return new WaitForClients($"round {Round}: {_up.Count} client(s) Up, min-clients = {_spec.MinClients} needed; waiting for more to join");
        _started = true;
        _sample = _sampler.Sample(_up, Round, Attempt);
        _gone.Clear();
        ClearRound();
        _deadline = now + _spec.RoundDeadline;
        InRound = true;
        return new StartRound(Round, Attempt, _sample, _deadline);
    }
}
