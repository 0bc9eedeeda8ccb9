namespace Rlft.Actors.Protocol;

/// <summary>
/// A node with role client offers itself to the federation (sent to the coordinator until acknowledged). Names no
/// data: <see cref="ModelHash"/> is a hash of the client's model structure (parameter names, shapes and dtypes), which
/// must equal the server's.
/// </summary>
internal sealed record JoinFederation(string ClientId, string ModelHash = "") : IRlftMessage;

/// <summary>The coordinator heard <see cref="JoinFederation"/>.</summary>
internal sealed record FederationJoined(string ClientId) : IRlftMessage;

/// <summary>The coordinator will not take this client (its model differs from the server's); the client node stops.</summary>
internal sealed record FederationRefused(string ClientId, string Reason) : IRlftMessage;

/// <summary>
/// One round's work for a client: the global weights (the trainable tensors in the policy's order, flattened: LoRA
/// adapters, or all weights of a small model). <see cref="ClipNorm"/> &gt; 0: clip the update before sending it
/// (client-level DP; the server clips again, except under secure aggregation, where it cannot). <see cref="Secure"/>:
/// the round runs under secure aggregation — the client answers at once with <see cref="FederatedRoundKey"/>, and sends
/// its update only masked, once <see cref="FederatedRoundPeers"/> named the round's other clients.
/// </summary>
internal sealed record FederatedRoundRequest(int Stage, int Round, int Attempt, float[] Global, double ClipNorm, bool Secure = false) : IRlftMessage;

/// <summary>
/// Secure aggregation, a client's first answer: a fresh public key for this round and attempt (ECDH, SubjectPublicKeyInfo
/// bytes) and the weight its update will carry in the mean (its number of examples; 1 under privacy).
/// </summary>
internal sealed record FederatedRoundKey(string ClientId, int Stage, int Round, int Attempt, byte[] PublicKey, double Weight) : IRlftMessage;

/// <summary>
/// Secure aggregation: every sampled client's public key (client id → key), sent to each of them once all are in, and
/// the weights' total. Each client masks <c>weight / total · update</c> against every other key, so that the masked
/// updates sum to the weighted mean.
/// </summary>
internal sealed record FederatedRoundPeers(int Stage, int Round, int Attempt, Dictionary<string, byte[]> PublicKeys, double TotalWeight) : IRlftMessage;

/// <summary>
/// A client's answer: its update from the round's global weights (<see cref="Delta"/>, or under secure aggregation the
/// masked fixed-point words <see cref="Masked"/>), how many examples it holds, and its training figures. Nothing else
/// about its data leaves the node.
/// </summary>
internal sealed record FederatedRoundUpdate(string ClientId, int Stage, int Round, int Attempt, float[] Delta, long[] Masked, double Samples,
    Dictionary<string, double> Metrics) : IRlftMessage;

/// <summary>
/// A client could not do its part of a round (its training or its masking threw): said at once, so that the round
/// neither waits for it until the deadline nor fails without a reason. Carries the kind of error only: its message
/// stays in the client's log, since it may quote the client's data.
/// </summary>
internal sealed record FederatedRoundFailed(string ClientId, int Stage, int Round, int Attempt, string Reason) : IRlftMessage;

// ---- between the coordinator and its learner (a child of the coordinator, always in the same process) ----------

/// <summary>A federated stage begins in the learner: it measures the held-out figures and answers <see cref="FederatedReady"/>.</summary>
internal sealed record BeginFederated(int Stage) : IRlftMessage;

/// <summary>The learner's global weights at the start of a federated stage. Local only (never crosses the wire).</summary>
internal sealed record FederatedReady(int Stage, float[] Global) : Akka.Actor.INoSerializationVerificationNeeded;

/// <summary>Aggregate a round's updates into the global weights (the driver's decision). Local only.</summary>
internal sealed record ApplyFederatedRound(int Stage, Coordination.AggregateRound Round) : Akka.Actor.INoSerializationVerificationNeeded;

/// <summary>The round is aggregated: the next global weights and the outer loop's figures. Local only.</summary>
internal sealed record FederatedRoundApplied(int Stage, int Round, float[] Global, Dictionary<string, double> Metrics) : Akka.Actor.INoSerializationVerificationNeeded;

/// <summary>The federated stage's last round is aggregated: the learner measures again and answers <see cref="StageCompleted"/>.</summary>
internal sealed record EndFederated(int Stage) : IRlftMessage;

/// <summary>The learner's model structure hash, told to the coordinator once the models are loaded (federated clients must match it).</summary>
internal sealed record LearnerModel(string ModelHash) : IRlftMessage;
