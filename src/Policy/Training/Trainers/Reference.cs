using Rlft.Policy.Lora;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>The frozen reference policy π_ref that KL terms are measured against.</summary>
internal interface IReferencePolicy
{
    /// <summary>(B, C) end-aligned log π_ref of each completion token (no gradient).</summary>
    Tensor LogProbs(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions);
}

/// <summary>A separate frozen copy of the starting policy.</summary>
internal sealed class FrozenReference(PolicyModel frozen) : IReferencePolicy
{
    public PolicyModel Model { get; } = frozen;

    public Tensor LogProbs(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions)
    {
        using var _ = no_grad();
        using var lp = Model.LogProbsOf(prompts, completions);
        return lp.LogProbs.detach().clone();
    }
}

/// <summary>With LoRA, the reference is the base model: the same weights with adapters switched off.</summary>
internal sealed class AdapterReference(PolicyModel policy, LoraAdapters adapters) : IReferencePolicy
{
    public Tensor LogProbs(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions)
    {
        using var _ = no_grad();
        using var off = adapters.Disabled();
        using var lp = policy.LogProbsOf(prompts, completions);
        return lp.LogProbs.detach().clone();
    }
}

/// <summary>
/// With a quantized base the adapters train in every stage; a stage's reference is the policy it started from: the
/// base plus the adapters' values at the stage's start (the bare base while they were still zero).
/// </summary>
internal sealed class SnapshotReference(PolicyModel policy, AdapterSnapshot snapshot) : IReferencePolicy
{
    public AdapterSnapshot Snapshot { get; } = snapshot;

    public Tensor LogProbs(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions)
    {
        using var _ = no_grad();
        using var on = Snapshot.Active();
        using var lp = policy.LogProbsOf(prompts, completions);
        return lp.LogProbs.detach().clone();
    }
}
