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

    public void Dispose()
    {
        _global.Dispose();
        _loop.Dispose();
        (_optimizer as IDisposable)?.Dispose();
    }
}
