using Rlft.Policy.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// How a trainer's step takes its part in a learner group. Each objective is a mean over a global set (tokens or
/// pairs); a member computes the mean over its share and scales it by its weight, share ÷ global count, so that the
/// gradients summed over the group are the gradient of the global mean (exactly, up to summation order).
/// </summary>
internal static class GroupShare
{
    /// <summary>This member's rows of the whole batch (all of them when solo), cut in whole units of <paramref name="unit"/>.</summary>
    public static IReadOnlyList<T> Of<T>(LearnerGroup group, IReadOnlyList<T> batch, int unit = 1)
    {
        if (group.IsSolo) return batch;
        var (start, count) = group.Share(batch.Count, unit);
        return batch.Skip(start).Take(count).ToList();
    }

    /// <summary>This member's share of the group's loss-carrying tokens: local ÷ Σ over the group (1 when solo).</summary>
    public static double TokenWeight(LearnerGroup group, Tensor mask)
    {
        if (group.IsSolo) return 1;
        double local = mask.sum().ToDouble();
        return local / Math.Max(1, group.Sum(local)[0]);
    }

    /// <summary>The loss scaled by the member's weight; untouched at weight 1 (solo behaviour unchanged bit for bit).</summary>
    public static Tensor Scale(Tensor loss, double weight) => weight == 1 ? loss : loss * weight;

    /// <summary>Penalties on the shared weights count once for the group: the leader adds them.</summary>
    public static IReadOnlyList<Regularization.IParameterPenalty> Penalties(LearnerGroup group, IReadOnlyList<Regularization.IParameterPenalty> penalties) =>
        group.IsLeader ? penalties : [];
}
