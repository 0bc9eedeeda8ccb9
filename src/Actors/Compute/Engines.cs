using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.Compute;

/// <summary>
/// The compute behind a rollout actor: a policy replica that switches weight versions atomically and
/// completes prompts. Called only from the rollout actor's own (pinned) thread.
/// </summary>
internal interface IRolloutEngine : IDisposable
{
    long PolicyVersion { get; }
    /// <summary>The version of the full weights under the replica (its LoRA adapters, if any, apply on these).</summary>
    long BaseVersion { get; }
    /// <summary>
    /// Full weights, or (a blob carrying adapter_config.json) LoRA adapter tensors on the current base. The blob is
    /// read during the call only: the weight stream reuses its array for the next version.
    /// </summary>
    void ApplyWeights(long version, byte[] blob);
    /// <summary>True when the replica can take a version from the learner's shelf in this process (<see cref="ApplyLocal"/>).</summary>
    bool AcceptsLocalWeights => false;
    /// <summary>
    /// Takes a shelved version: full weights become the replica's parameters by sharing the shelf's storage (no copy
    /// where the dtypes agree); adapters are copied into the replica's own. Called while the version is leased.
    /// </summary>
    void ApplyLocal(long version, WeightSync.LocalWeights weights) => throw new NotSupportedException("this replica takes weights as bytes");
    RolloutSample[] Generate(PromptItem[] prompts, SamplingSettings sampling, long seed);
}

/// <summary>The compute behind a reward actor: the reward pipeline (and its reward model, if any).</summary>
internal interface IRewardEngine : IDisposable
{
    long RewardModelVersion { get; }
    /// <summary>True when the pipeline scores with a reward model trained by the job.</summary>
    bool NeedsRewardModel { get; }
    /// <summary>Reward-model weights; the blob is read during the call only (see <see cref="IRolloutEngine.ApplyWeights"/>).</summary>
    void ApplyRewardModel(long version, byte[] blob);
    /// <summary>True when the reward model can be taken from the learner's shelf in this process (<see cref="ApplyLocalRewardModel"/>).</summary>
    bool AcceptsLocalWeights => false;
    /// <summary>Takes a shelved reward model: the trunk shares the shelf's storage, the head is copied. Called while the version is leased.</summary>
    void ApplyLocalRewardModel(long version, WeightSync.LocalWeights weights) => throw new NotSupportedException("this reward engine takes weights as bytes");
    Task<ScoredBatch> ScoreAsync(RolloutBatch batch, CancellationToken cancellationToken);
}

/// <summary>
/// The compute behind the learner actor: policy, value head, reference, reward model, optimizers.
/// Everything here runs on the learner's pinned thread.
/// </summary>
internal interface ILearnerEngine : IDisposable
{
    long PolicyVersion { get; }
    long RewardModelVersion { get; }
    /// <summary>Runs an offline stage (sft, reward-model, dpo, distill) to the end, reporting progress.</summary>
    StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken cancellationToken);
    /// <summary>
    /// Prepares an online stage (value head, reference, optimizer); with <paramref name="resume"/>, restores
    /// them from the checkpoint the learner was created from, to continue the stage mid-way.
    /// </summary>
    void BeginOnlineStage(StageSpec stage, bool resume = false);
    /// <summary>One update on scored experience; returns the new policy version and metrics.</summary>
    PolicyUpdated Train(StageSpec stage, TrainOn experience);
    /// <summary>Serialized weights of the current version (policy or reward model).</summary>
    byte[] ExportWeights(WeightKind kind);
    /// <summary>
    /// The current version as tensors for replicas in this process (null: this learner only exports bytes): the
    /// learner's own frozen tensors where they will not change while replicas read them, else a copy.
    /// </summary>
    WeightSync.LocalWeights? ShareWeights(WeightKind kind) => null;
    /// <summary>True once LoRA adapters are trained: policy exports then hold only adapter tensors.</summary>
    bool ExportsAdapterOnly { get; }
    /// <summary>The full policy version the exported adapters apply on (-1 without adapters).</summary>
    long AdapterBaseVersion { get; }
    /// <summary>
    /// The full weights the adapters apply on (version <see cref="AdapterBaseVersion"/>): a learner resumed
    /// mid-way through a LoRA stage serves them again, since replicas start from them.
    /// </summary>
    byte[] ExportAdapterBase() => throw new NotSupportedException("this learner does not train adapters");
    /// <summary>The adapters' base as tensors for replicas in this process (null: bytes only).</summary>
    WeightSync.LocalWeights? ShareAdapterBase() => null;
    EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts);
    /// <summary>A hash of the policy's structure (<see cref="Federated.ModelStructure"/>) that federated clients must match.</summary>
    string ModelHash => "";
    /// <summary>A federated stage begins: its held-out "before" figures are measured; returns the global weights.</summary>
    float[] BeginFederated(StageSpec stage) => throw new NotSupportedException("this learner does not run federated stages");
    /// <summary>Aggregates a federated round into the global weights (a new policy version); returns them and the outer loop's figures.</summary>
    (float[] Global, Dictionary<string, double> Metrics) ApplyFederatedRound(StageSpec stage, Coordination.AggregateRound round) =>
        throw new NotSupportedException("this learner does not run federated stages");
    /// <summary>The federated stage ended: its held-out figures before and after.</summary>
    StageCompleted EndFederated(StageSpec stage) => throw new NotSupportedException("this learner does not run federated stages");
    /// <summary>Writes the models and the training state (trainer/) that exact resume needs.</summary>
    void SaveCheckpoint(string directory);
    /// <summary>
    /// In a learner group, before the first step: the members compare a hash of the weights they start from (every member
    /// calls it at once; see <see cref="Rlft.Policy.Collectives.LearnerGroup.CheckAgreement"/>). Alone: nothing.
    /// </summary>
    void CheckGroupStart() { }
}
