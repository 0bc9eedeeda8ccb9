using Rlft.Actors.Coordination;
using Rlft.Actors.Jobs;
using Rlft.Policy.Training;
using TorchSharp.Modules;

namespace Rlft.Actors.Compute.Federated;

/// <summary>
/// The server's side of a federated stage, without actors: the global weights (the policy's trainable tensors), the
/// outer loop of the stage's algorithm (FedAvg weighted by samples, FedProx, FedAdam/FedAdagrad/FedYogi at
/// <c>server-lr</c>, DP-FedAvg under privacy), and the policy kept equal to the global weights after every round.
/// </summary>
internal sealed class FederatedServer : IDisposable
{
    readonly IReadOnlyList<(string Name, Parameter Value)> _trainable;
    readonly WeightSet _global;
    readonly OuterLoop _loop;
    readonly IServerOptimizer _optimizer;

    public FederatedServer(FederatedSpec spec, IReadOnlyList<(string Name, Parameter Value)> trainable, long? noiseSeed = null)
    {
        _trainable = trainable;
        _global = WeightSet.Snapshot(trainable);
        _optimizer = spec.ServerOptimizer();
        _loop = new OuterLoop(Aggregation.WeightedMean, _optimizer, spec.Privacy, noiseSeed);
    }

    /// <summary>The global weights as sent to the clients.</summary>
    public float[] Global() => _global.ToFloats();

    /// <summary>Bytes of the global weights (what each sampled client receives per round).</summary>
    public long GlobalBytes => _global.Bytes;

    /// <summary>Aggregates a round's updates into the global weights and writes them into the policy; returns the outer loop's figures.</summary>
    public Dictionary<string, double> Apply(AggregateRound round)
    {
        if (round.Updates.Any(u => u.Masked is not null)) return ApplyMasked(round);
        var updates = round.Updates.Select(u => new ParticipantUpdate(u.ClientId,
            WeightSet.FromFloats(_global, u.Delta ?? throw new InvalidOperationException($"client {u.ClientId} sent no update")),
            u.Samples, u.Metrics)).ToList();
        try
        {
            var metrics = _loop.Apply(_global, updates);
            _global.CopyTo(_trainable);
            return metrics;
        }
        finally { foreach (var u in updates) u.Dispose(); }
    }

    /// <summary>
    /// Secure aggregation: the masked updates' sum modulo 2⁶⁴, in which every pair's masks cancel, is the fixed-point
    /// weighted mean (each client scaled its update by its share of the round's weight); the outer loop takes it as is.
    /// The server never holds one client's update, so it cannot clip one: under privacy the clients' clipping is trusted.
    /// </summary>
    Dictionary<string, double> ApplyMasked(AggregateRound round)
    {
        var missing = round.Updates.FirstOrDefault(u => u.Masked is null);
        if (missing is not null) throw new InvalidOperationException($"secure aggregation: client {missing.ClientId} sent a plain update in a masked round");
        var mean = SecureAggregation.Decode(SecureAggregation.Sum(round.Updates.Select(u => u.Masked!)));
        using var sum = WeightSet.FromFloats(_global, mean);
        var metrics = _loop.ApplySum(_global, sum, totalWeight: 1, round.Updates.Count);
        _global.CopyTo(_trainable);
        return metrics;
    }

    public void Dispose()
    {
        _global.Dispose();
        _loop.Dispose();
        (_optimizer as IDisposable)?.Dispose();
    }
}
