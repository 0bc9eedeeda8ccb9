using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>What one participant did in a round: its update from the round's global weights, how much it counts, and its figures.</summary>
public sealed record ParticipantUpdate(string Id, WeightSet Delta, double Weight, IReadOnlyDictionary<string, double> Metrics) : IDisposable
{
    public void Dispose() => Delta.Dispose();
}

/// <summary>A participant of an outer loop: a federated client, or a task in meta-learning.</summary>
public interface IParticipant
{
    string Id { get; }
    /// <summary>Trains from <paramref name="global"/> (inner steps) and returns the update <c>adapted − global</c>.</summary>
    ParticipantUpdate Run(WeightSet global, int round);
}

/// <summary>How participants' updates become one pseudo-gradient.</summary>
public enum Aggregation
{
    /// <summary>Every participant counts the same (Reptile; FedAvg with equal clients).</summary>
    Mean,
    /// <summary>Each participant counts by its weight, e.g. its number of examples (FedAvg).</summary>
    WeightedMean,
}

/// <summary>
/// The outer loop shared by federated fine-tuning and meta-learning: global weights, participants running inner steps
/// from them, an aggregation rule, a server optimizer. FedAvg is <see cref="Aggregation.WeightedMean"/> with
/// <see cref="ServerSgd"/> at learning rate 1; Reptile (Nichol et al., 2018) is <see cref="Aggregation.Mean"/> with
/// <see cref="ServerSgd"/> at the outer learning rate ε; FedAdam (Reddi et al., 2021) is <see cref="ServerAdam"/>;
/// FedProx adds its proximal term inside each participant. Updates are summed in the order of the participants' ids,
/// so that a round's result does not depend on the order in which they finished.
/// </summary>
public sealed class OuterLoop(Aggregation aggregation, IServerOptimizer server)
{
    /// <summary>
    /// One round: each participant runs from <paramref name="global"/>, and <paramref name="global"/> moves by the server
    /// optimizer's step along the aggregated update. Returns the round's figures (the participants' means, the update's norm).
    /// </summary>
    public Dictionary<string, double> Round(WeightSet global, IReadOnlyList<IParticipant> participants, int round)
    {
        if (participants.Count == 0) throw new ArgumentException("a round needs at least one participant", nameof(participants));
        var updates = new List<ParticipantUpdate>();
        try
        {
            foreach (var p in participants) updates.Add(p.Run(global, round));
            return Apply(global, updates);
        }
        finally { foreach (var u in updates) u.Dispose(); }
    }

    /// <summary>Aggregates finished updates into <paramref name="global"/> (for participants that run elsewhere).</summary>
    public Dictionary<string, double> Apply(WeightSet global, IReadOnlyList<ParticipantUpdate> updates)
    {
        using var aggregated = Aggregate(global, updates, aggregation);
        var metrics = new Dictionary<string, double>
        {
            ["outer/participants"] = updates.Count,
            ["outer/update_norm"] = aggregated.Norm(),
            ["outer/bytes_in"] = updates.Sum(u => u.Delta.Bytes),
        };
        foreach (var key in updates.SelectMany(u => u.Metrics.Keys).Distinct().Order(StringComparer.Ordinal))
            metrics[key] = updates.Where(u => u.Metrics.ContainsKey(key)).Average(u => u.Metrics[key]);
        server.Step(global, aggregated);
        return metrics;
    }

    /// <summary>The (weighted) mean of the updates, summed in the order of their ids.</summary>
    public static WeightSet Aggregate(WeightSet like, IReadOnlyList<ParticipantUpdate> updates, Aggregation aggregation)
    {
        var ordered = updates.OrderBy(u => u.Id, StringComparer.Ordinal).ToList();
        double total = aggregation == Aggregation.Mean ? ordered.Count : ordered.Sum(u => u.Weight);
        if (!(total > 0)) throw new ArgumentException("the participants' weights must sum to more than zero", nameof(updates));
        var sum = WeightSet.ZerosLike(like);
        foreach (var u in ordered) sum.AddScaled(u.Delta, (aggregation == Aggregation.Mean ? 1.0 : u.Weight) / total);
        return sum;
    }
}

/// <summary>How the server moves the global weights along the aggregated update Δ (a pseudo-gradient pointing downhill).</summary>
public interface IServerOptimizer
{
    void Step(WeightSet global, WeightSet update);
}

/// <summary>x ← x + lr · Δ: FedAvg at lr = 1, Reptile's outer step at lr = ε.</summary>
public sealed class ServerSgd(double learningRate) : IServerOptimizer
{
    public void Step(WeightSet global, WeightSet update) => global.AddScaled(update, learningRate);
}

/// <summary>
/// FedAdam (Reddi et al., 2021, "Adaptive Federated Optimization"): m ← β₁m + (1−β₁)Δ, v ← β₂v + (1−β₂)Δ²,
/// x ← x + lr · m / (√v + τ); no bias correction, as in the paper; τ (default 1e-3) bounds the adaptivity.
/// </summary>
public sealed class ServerAdam(double learningRate, double beta1 = 0.9, double beta2 = 0.99, double tau = 1e-3) : IServerOptimizer, IDisposable
{
    WeightSet? _m, _v;

    public void Step(WeightSet global, WeightSet update)
    {
        using var _ = no_grad();
        _m ??= WeightSet.ZerosLike(global);
        _v ??= WeightSet.ZerosLike(global);
        foreach (var (name, x) in global.Items)
        {
            using var scope = NewDisposeScope();
            var d = update[name];
            var m = _m[name].mul_(beta1).add_(d, alpha: 1 - beta1);
            var v = _v[name].mul_(beta2).add_(d.square(), alpha: 1 - beta2);
            x.add_(m / (v.sqrt() + tau), alpha: learningRate);
        }
    }

    public void Dispose() { _m?.Dispose(); _v?.Dispose(); }
}
