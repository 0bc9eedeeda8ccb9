using System.Security.Cryptography;
using Rlft.Actors.Protocol;
using Rlft.Policy.Training;
using TorchSharp.Modules;

namespace Rlft.Actors.Compute.Federated;

/// <summary>
/// A client's side of a federated stage, without actors: its participant (its own data, an SFT or DPO inner loop with
/// the stage's local steps and FedProx's μ) on its own copy of the model. A round writes the received global weights
/// into the trainable parameters, trains, and answers with the update, clipped when the server asks for it. The
/// answer carries the update, the number of examples and the training losses — nothing else of the data. Under secure
/// aggregation the update leaves only masked (<see cref="Mask"/>).
/// </summary>
internal sealed class FederatedClient(string id, IParticipant participant, IReadOnlyList<(string Name, Parameter Value)> trainable, double samples)
{
    public string Id => id;

    /// <summary>How many examples this client holds (its weight in FedAvg).</summary>
    public double Samples => samples;

    /// <summary>The weight this client's update carries in a round's mean: its examples, or 1 under privacy (equal weights).</summary>
    public double WeightFor(FederatedRoundRequest request) => request.ClipNorm > 0 ? 1 : samples;

    public FederatedRoundUpdate Train(FederatedRoundRequest request)
    {
        using var like = WeightSet.Snapshot(trainable);
        using var global = WeightSet.FromFloats(like, request.Global);
        using var update = participant.Run(global, request.Round);
        if (request.ClipNorm > 0) ClientPrivacy.Clip(update.Delta, request.ClipNorm);
        var metrics = update.Metrics.ToDictionary(kv => kv.Key, kv => kv.Value);
        return new FederatedRoundUpdate(id, request.Stage, request.Round, request.Attempt, update.Delta.ToFloats(), [], samples, metrics);
    }

    /// <summary>
    /// Secure aggregation: <paramref name="plain"/> (this client's update, trained with the round key
    /// <paramref name="key"/>) as it leaves the node — <c>weight / total · Δ</c> in fixed point, plus a mask agreed with
    /// every other client named in <paramref name="peers"/>, and no plain values. Refused when the server's roster does not
    /// carry this client's own key, or names no other client (a mask against no one hides nothing).
    /// </summary>
    public static FederatedRoundUpdate Mask(FederatedRoundUpdate plain, ECDiffieHellman key, double weight, FederatedRoundPeers peers)
    {
        string me = plain.ClientId;
        if (peers.Round != plain.Round || peers.Attempt != plain.Attempt || peers.Stage != plain.Stage)
            throw new ArgumentException($"secure aggregation: the peers of round {peers.Round} (attempt {peers.Attempt}) for an update of round {plain.Round} (attempt {plain.Attempt})");
        if (!peers.PublicKeys.TryGetValue(me, out var mine) || !mine.AsSpan().SequenceEqual(SecureAggregation.PublicKey(key)))
            throw new InvalidOperationException($"secure aggregation: the server's list of the round's keys does not carry client {me}'s own key");
        if (peers.PublicKeys.Count < 2)
            throw new InvalidOperationException("secure aggregation: the round names no other client to mask against");
        if (!(peers.TotalWeight >= weight) || !(weight > 0))
            throw new InvalidOperationException($"secure aggregation: weight {weight} of a total {peers.TotalWeight}");
        var seeds = peers.PublicKeys.Where(p => p.Key != me)
            .ToDictionary(p => p.Key, p => SecureAggregation.PairSeed(key, p.Value, me, p.Key, plain.Round), StringComparer.Ordinal);
        float share = (float)(weight / peers.TotalWeight);
        var scaled = plain.Delta.Select(v => v * share).ToArray();
        var masked = SecureAggregation.Mask(SecureAggregation.Encode(scaled), me, seeds);
        return plain with { Delta = [], Masked = masked };
    }
}
