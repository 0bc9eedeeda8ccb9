using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>What one participant did in a round: its update from the round's global weights, how much it counts, and its figures.</summary>
internal sealed record ParticipantUpdate(string Id, WeightSet Delta, double Weight, IReadOnlyDictionary<string, double> Metrics) : IDisposable
{
    public void Dispose() => Delta.Dispose();
}

/// <summary>A participant of an outer loop: a federated client, or a task in meta-learning.</summary>
internal interface IParticipant
{
    string Id { get; }
    /// <summary>Trains from <paramref name="global"/> (inner steps) and returns the update <c>adapted − global</c>.</summary>
    ParticipantUpdate Run(WeightSet global, int round);
}

/// <summary>How participants' updates become one pseudo-gradient.</summary>
internal enum Aggregation
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
/// FedProx adds its proximal term inside each participant (<see cref="InnerLoopParticipant{T}.Mu"/>). With
/// <paramref name="privacy"/>, updates are clipped and averaged with equal weight and the sum gets Gaussian noise
/// (DP-FedAvg, <see cref="ClientPrivacy"/>), drawn from a generator seeded by <paramref name="noiseSeed"/> (by default
/// from the operating system's cryptographic generator). Updates are summed in the order of the participants' ids, so
/// that a round's result does not depend on the order in which they finished.
/// </summary>
internal sealed class OuterLoop(Aggregation aggregation, IServerOptimizer server, ClientPrivacy? privacy = null, long? noiseSeed = null) : IDisposable
{
    TorchSharp.torch.Generator? _noise;

    public ClientPrivacy? Privacy => privacy;

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
    /// Under privacy, each update is clipped in place first.
    public Dictionary<string, double> Apply(WeightSet global, IReadOnlyList<ParticipantUpdate> updates)
    {
        var metrics = new Dictionary<string, double> { ["outer/bytes_in"] = updates.Sum(u => u.Delta.Bytes) };
        if (privacy is not null)
        {
            var norms = updates.Select(u => privacy.Clip(u.Delta)).ToList();
            metrics["privacy/clipped_fraction"] = norms.Count(n => n > privacy.ClipNorm) / (double)norms.Count;
            metrics["privacy/update_norm_mean"] = norms.Average();
        }
        using var aggregated = Aggregate(global, updates, privacy is null ? aggregation : Aggregation.Mean);
        foreach (var key in updates.SelectMany(u => u.Metrics.Keys).Distinct().Order(StringComparer.Ordinal))
            metrics[key] = updates.Where(u => u.Metrics.ContainsKey(key)).Average(u => u.Metrics[key]);
        return Step(global, aggregated, updates.Count, metrics);
    }

    /// <summary>
    /// Aggregates an already summed update (what secure aggregation yields: Σ wᵢΔᵢ, the weights' total
    /// <paramref name="totalWeight"/>; under privacy the clipped updates' plain sum and the participants' count).
    /// </summary>
    public Dictionary<string, double> ApplySum(WeightSet global, WeightSet sum, double totalWeight, int participants)
    {
        if (!(totalWeight > 0)) throw new ArgumentException("the participants' weights must sum to more than zero", nameof(totalWeight));
        sum.Scale(1 / totalWeight);
        return Step(global, sum, participants, []);
    }

    /// <summary>Noise (under privacy) on the mean <paramref name="aggregated"/>, then the server's step.</summary>
    Dictionary<string, double> Step(WeightSet global, WeightSet aggregated, int participants, Dictionary<string, double> metrics)
    {
        if (privacy is not null)
        {
            _noise ??= new((ulong)(noiseSeed ?? System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue)));
            privacy.AddNoise(aggregated, _noise, scale: 1.0 / participants);
        }
        metrics["outer/participants"] = participants;
        metrics["outer/update_norm"] = aggregated.Norm();
        server.Step(global, aggregated);
        return metrics;
    }

    public void Dispose() => _noise?.Dispose();

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
