using Rlft.Policy.Generation;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>Held-out figures for a policy, with the completions they came from.</summary>
public sealed record EvalResult(Dictionary<string, double> Metrics, string[] Prompts, string[] Completions, double[] Rewards);

/// <summary>
/// Evaluation on held-out prompts: the task reward of sampled completions (<c>eval/reward</c>, when the task has
/// one), the KL to the reference estimated on those samples (<c>eval/kl</c>, nats per sequence, Σ log π − log π_ref),
/// the win rate against the reference's own completions as judged by <c>judge</c> — a reward model, or the task
/// reward (<c>eval/win_rate</c>, ties count half) — and the response length.
/// </summary>
public static class Evaluator
{
    public static EvalResult Run(
        PolicyModel policy,
        IReadOnlyList<(string Prompt, string? Answer)> prompts,
        Func<string, string, string?, double>? taskReward,
        GenerationOptions generation,
        IReferencePolicy? reference = null,
        PolicyModel? referenceSampler = null,
        Func<IReadOnlyList<(string Prompt, string Completion)>, float[]>? rewardModel = null,
        int batchSize = 64)
    {
        var (completions, tokens, logps) = Sample(policy, prompts, generation, batchSize);
        var rewards = taskReward is null ? [] : prompts.Select((p, i) => taskReward(p.Prompt, completions[i], p.Answer)).ToArray();
        var metrics = new Dictionary<string, double> { ["eval/length"] = tokens.Average(t => t.Length) };
        if (taskReward is not null) metrics["eval/reward"] = rewards.Average();
        if (reference is not null)
        {
            var promptIds = prompts.Select(p => policy.EncodePrompt(p.Prompt)).ToList();
            double kl = 0;
            for (int i = 0; i < prompts.Count; i += batchSize)
            {
                using var scope = NewDisposeScope();
                var idx = Enumerable.Range(i, Math.Min(batchSize, prompts.Count - i)).ToList();
                var refLp = reference.LogProbs(idx.Select(j => promptIds[j]).ToList(), idx.Select(j => ExperienceTensors.NonEmpty(tokens[j], policy.Tokenizer.EosId)).ToList());
                var refSums = refLp.sum(1).cpu().data<float>().ToArray();
                for (int k = 0; k < idx.Count; k++) kl += logps[idx[k]].Sum() - refSums[k];
            }
            metrics["eval/kl"] = kl / prompts.Count;
        }
        if (referenceSampler is not null && rewardModel is not null)
        {
            var (refCompletions, _, _) = Sample(referenceSampler, prompts, generation, batchSize);
            var mine = rewardModel(prompts.Select((p, i) => (p.Prompt, completions[i])).ToList());
            var theirs = rewardModel(prompts.Select((p, i) => (p.Prompt, refCompletions[i])).ToList());
            metrics["eval/win_rate"] = mine.Zip(theirs).Average(x => x.First > x.Second ? 1.0 : x.First == x.Second ? 0.5 : 0.0);
            if (taskReward is not null) metrics["eval/reference_reward"] = prompts.Select((p, i) => taskReward(p.Prompt, refCompletions[i], p.Answer)).Average();
        }
        return new EvalResult(metrics, prompts.Select(p => p.Prompt).ToArray(), completions, rewards);
    }

    /// <summary>Samples completions in batches: texts, tokens (EOS included when emitted), per-token log π.</summary>
    public static (string[] Texts, int[][] Tokens, float[][] LogProbs) Sample(PolicyModel policy, IReadOnlyList<(string Prompt, string? Answer)> prompts, GenerationOptions generation, int batchSize = 64)
    {
        var texts = new List<string>(); var tokens = new List<int[]>(); var logps = new List<float[]>();
        for (int i = 0; i < prompts.Count; i += batchSize)
        {
            var chunk = prompts.Skip(i).Take(batchSize).Select(p => policy.EncodePrompt(p.Prompt)).ToList();
            var options = generation.Seed is long s ? generation with { Seed = s + i } : generation;
            var result = TextGenerator.Generate(policy.Model, chunk, options, policy.Tokenizer.PadId, policy.Tokenizer.EosId);
            tokens.AddRange(result.Tokens);
            logps.AddRange(result.LogProbs);
            texts.AddRange(result.Tokens.Select(t => policy.Tokenizer.Decode(t)));
        }
        return (texts.ToArray(), tokens.ToArray(), logps.ToArray());
    }
}
