namespace Rlft.Actors.Protocol;

/// <summary>A node with role client offers itself to the federation (sent to the coordinator until acknowledged). Names no data.</summary>
public sealed record JoinFederation(string ClientId) : IRlftMessage;

/// <summary>The coordinator heard <see cref="JoinFederation"/>.</summary>
public sealed record FederationJoined(string ClientId) : IRlftMessage;

/// <summary>
/// One round's work for a client: the global weights (the trainable tensors in the policy's order, flattened: LoRA
/// adapters, or all weights of a small model). <see cref="ClipNorm"/> &gt; 0: clip the update before sending it
/// (client-level DP; the server clips again).
/// </summary>
public sealed record FederatedRoundRequest(int Stage, int Round, int Attempt, float[] Global, double ClipNorm) : IRlftMessage;

/// <summary>
/// A client's answer: its update from the round's global weights (<see cref="Delta"/>, or under secure aggregation the
/// masked fixed-point words <see cref="Masked"/>), how many examples it holds, and its training figures. Nothing else
/// about its data leaves the node.
/// </summary>
public sealed record FederatedRoundUpdate(string ClientId, int Stage, int Round, int Attempt, float[] Delta, long[] Masked, double Samples,
    Dictionary<string, double> Metrics) : IRlftMessage;
