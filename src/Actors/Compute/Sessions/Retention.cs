using Rlft.Policy.Chat;
using Rlft.Policy.Generation;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;

namespace Rlft.Actors.Compute.Sessions;

/// <summary>
/// Sequential fine-tuning that remembers: what an SFT stage leaves behind to be measured again after every later stage —
/// its held-out examples (and, on the built-in family's data, its held-out prompts and their greedy reward) with the
/// figures right after the stage. Each later offline stage reports <c>after/retention/STAGE/loss</c> (and
/// <c>…/reward</c>, <c>…/reward_kept</c>: the reward now over the reward right after STAGE) next to its own figures.
/// </summary>
internal sealed record RetentionProbe(string Stage, IReadOnlyList<EncodedExample> HeldOut, IReadOnlyList<PromptInput>? Prompts, double LossAfter, double? RewardAfter)
{
    /// <summary>Held-out reward of greedy samples on <paramref name="prompts"/> (the task family's rule).</summary>
    public static double Reward(PolicyModel policy, IReadOnlyList<PromptInput> prompts, GenerationOptions sampling) =>
        Evaluator.Run(policy, prompts, ReviewTask.Score, sampling with { Temperature = 0 }).Metrics["eval/reward"];

    /// <summary>This probe's figures now, keyed <c>retention/STAGE/…</c>.</summary>
    public Dictionary<string, double> Measure(PolicyModel trainable, PolicyModel policy, GenerationOptions sampling)
    {
        var figures = new Dictionary<string, double>();
        double loss = SftTrainer.Loss(trainable, HeldOut);
        figures[$"retention/{Stage}/loss"] = loss;
        figures[$"retention/{Stage}/loss_increase"] = loss - LossAfter;
        if (Prompts is { Count: > 0 } prompts && RewardAfter is { } after)
        {
            double reward = Reward(policy, prompts, sampling);
            figures[$"retention/{Stage}/reward"] = reward;
            figures[$"retention/{Stage}/reward_kept"] = after > 0 ? reward / after : double.NaN;
        }
        return figures;
    }
}
