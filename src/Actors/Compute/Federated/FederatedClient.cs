using Rlft.Actors.Protocol;
using Rlft.Policy.Training;
using TorchSharp.Modules;

namespace Rlft.Actors.Compute.Federated;

/// <summary>
/// A client's side of a federated stage, without actors: its participant (its own data, an SFT or DPO inner loop with
/// the stage's local steps and FedProx's μ) on its own copy of the model. A round writes the received global weights
/// into the trainable parameters, trains, and answers with the update, clipped when the server asks for it. The
/// answer carries the update, the number of examples and the training losses — nothing else of the data.
/// </summary>
internal sealed class FederatedClient(string id, IParticipant participant, IReadOnlyList<(string Name, Parameter Value)> trainable, double samples)
{
    public string Id => id;

    public FederatedRoundUpdate Train(FederatedRoundRequest request)
    {
        using var like = WeightSet.Snapshot(trainable);
        using var global = WeightSet.FromFloats(like, request.Global);
        using var update = participant.Run(global, request.Round);
        if (request.ClipNorm > 0) ClientPrivacy.Clip(update.Delta, request.ClipNorm);
        var metrics = update.Metrics.ToDictionary(kv => kv.Key, kv => kv.Value);
        return new FederatedRoundUpdate(id, request.Stage, request.Round, request.Attempt, update.Delta.ToFloats(), [], samples, metrics);
    }
}
