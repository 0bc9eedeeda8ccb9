using Rlft.Actors.Configuration;

namespace Rlft.Actors.Jobs;

/// <summary>
/// <c>rlft.job.learners = N</c>: how many learners train the policy data-parallel (default 1), and which jobs a group of
/// N can run. Each refusal is one line naming the key at fault and, for a batch too small to share, the figures.
/// </summary>
internal static class LearnersReader
{
    const string Key = JobSpecReader.Root + ".learners";
    /// <summary>The default of <c>rlft.job.group-check-every</c>: a hash of the trainable weights every 50 optimizer steps.</summary>
    public const int DefaultCheckEvery = 50;

    /// <summary>The number of learners (1 when unset); 0 or a negative number is refused.</summary>
    public static int Read(RlftConfig c)
    {
        int n = c.GetInt(Key, 1);
        if (n < 1) throw new ConfigException($"{Key}: {n} learners cannot train; a job has at least one learner (1 is one learner on the whole batch) (in {c.Source})");
        if (n > 64) throw new ConfigException($"{Key}: {n} is more than the 64 learners one process hosts (in {c.Source})");
        return n;
    }

    /// <summary>
    /// What a group of <see cref="JobSpec.Learners"/> cannot run: stage kinds whose trainers do not split a batch yet,
    /// settings that would make the replicas draw different random numbers, and batches with fewer rows (examples, pairs,
    /// PPO minibatch samples, GRPO groups) than learners.
    /// </summary>
    public static IEnumerable<string> Conflicts(JobSpec job)
    {
        int n = job.Learners;
        if (n <= 1) yield break;
        string with = $"with {Key} = {n}";
        // Adapter dropout draws from the process-wide generator: replicas on their own threads would interleave the draws.
        if (job.Lora is { Dropout: > 0 } lora)
            yield return $"{JobSpecReader.Root}.lora.dropout: {lora.Dropout} is not supported {with} (adapter dropout draws from the process-wide generator, which the replicas share); set dropout = 0 or learners = 1";
        foreach (var stage in job.Stages)
        {
            string at = $"{JobSpecReader.Root}.stages[{stage.Index}]";
            if (stage.Federated is not null)
            {
                yield return $"{at}.federated: a federated stage does not train in a learner group ({with}); its clients train, not the learners";
                continue;
            }
            string? unsupported = stage.TrainsEncoder ? "encoder stages (classify, qa, an encoder reward model) do not train in a learner group yet"
                : stage.Kind switch
                {
                    StageKind.Meta or StageKind.Adapt => "meta-learning and adaptation stages do not train in a learner group yet",
                    StageKind.OnlineDpo => "online DPO keeps only the pairs whose scores differ, so a batch's pair count (and each learner's share) is known only at run time",
                    _ => null,
                };
            if (unsupported is not null)
            {
                yield return $"{at}.kind: {stage.Kind switch { StageKind.OnlineDpo => "online-dpo", StageKind.RewardModel => "reward-model", var k => k.ToString().ToLowerInvariant() }} is not supported {with}: {unsupported}; set learners = 1";
                continue;
            }
            switch (stage.Kind)
            {
                case StageKind.Ppo:
                {
                    int minibatch = Math.Max(1, stage.BatchSize / stage.Ppo.MiniBatches);
                    if (minibatch < n)
                        yield return $"{at}.ppo.mini-batches: {stage.BatchSize} samples in {stage.Ppo.MiniBatches} minibatch(es) of {minibatch} cannot give each of {n} learners a share ({with}); raise batch-size to at least {n * stage.Ppo.MiniBatches} or lower mini-batches or learners";
                    break;
                }
                case StageKind.Grpo:
                {
                    int groups = Math.Max(1, stage.BatchSize / stage.Grpo.GroupSize);
                    if (groups < n)
                        yield return $"{at}.batch-size: {stage.BatchSize} samples make {groups} GRPO group(s) of {stage.Grpo.GroupSize}, which cannot give each of {n} learners a whole group ({with}); raise batch-size to at least {n * stage.Grpo.GroupSize} or lower learners";
                    break;
                }
                default:
                    if (stage.BatchSize < n)
                    {
                        string rows = stage.Kind is StageKind.Dpo or StageKind.RewardModel ? "pairs" : "examples";
                        yield return $"{at}.batch-size: a batch of {stage.BatchSize} {rows} cannot give each of {n} learners a share ({with}); raise batch-size to at least {n} or lower learners";
                    }
                    break;
            }
        }
    }
}
