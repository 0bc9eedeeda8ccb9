namespace Rlft.Actors.Protocol;

/// <summary>
/// A learner-replica node offers itself to the leader's learner group (sent to every learner node's roster until the
/// leader forms the group): where its bulk channel listens (host:port), and the fingerprint of the job it read.
/// </summary>
internal sealed record LearnerReplicaReady(string Endpoint, string Fingerprint, string Node) : IRlftMessage;

/// <summary>
/// The leader takes the replica as member <paramref name="Rank"/> of a group of <paramref name="Size"/>: connect the bulk
/// channel to every member's endpoint (by rank; the leader's first), then answer <see cref="LearnerReplicaConnected"/>.
/// </summary>
internal sealed record FormLearnerGroup(int Rank, int Size, string[] Endpoints) : IRlftMessage;

/// <summary>The replica's bulk channel is connected to every member.</summary>
internal sealed record LearnerReplicaConnected(int Rank) : IRlftMessage;

/// <summary>
/// Load the models (from <paramref name="ResumeFrom"/>, a checkpoint the replica can read, when set) once the leader has
/// its own, and compare them with the group's; answered with <see cref="LearnerReplicaDone"/>.
/// </summary>
internal sealed record BuildLearnerReplica(string? ResumeFrom) : IRlftMessage;

/// <summary>A replica finished a call of the leader's (building, an offline stage, an online stage's start, a step); <paramref name="Error"/> when it failed.</summary>
internal sealed record LearnerReplicaDone(int Rank, string? Error) : IRlftMessage;

/// <summary>The leader re-forms its group (a replica joined, or one was lost): leave the current one and offer yourself again.</summary>
internal sealed record LeaveLearnerGroup : IRlftMessage;
