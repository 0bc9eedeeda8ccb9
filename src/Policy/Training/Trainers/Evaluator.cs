using Rlft.Policy.Chat;
using Rlft.Policy.Generation;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>Held-out figures for a policy, with the completions they came from.</summary>
internal sealed record EvalResult(Dictionary<string, double> Metrics, string[] Prompts, string[] Completions, double[] Rewards);

/// <summary>
/// Evaluation on held-out prompts: the task reward of sampled completions (<c>eval/reward</c>, when the task has
/// one), the KL to the reference estimated on those samples (<c>eval/kl</c>, nats per sequence, Σ log π − log π_ref),
/// the win rate against the reference's own completions as judged by <c>judge</c> — a reward model, or the task
/// reward (<c>eval/win_rate</c>, ties count half) — and the response length.
/// </summary>
internal static class Evaluator
{
    /// <summary>Plain-text prompts (see the <see cref="PromptInput"/> overload).</summary>
    public static EvalResult Run(
        PolicyModel policy,
        IReadOnlyList<(string Prompt, string? Answer)> prompts,
        Func<string, string, string?, double>? taskReward,
        GenerationOptions generation,
        IReferencePolicy? reference = null,
        PolicyModel? referenceSampler = null,
        Func<IReadOnlyList<(string Prompt, string Completion)>, float[]>? rewardModel = null,
        int batchSize = 64) =>
        Run(policy, prompts.Select(p => PromptInput.Plain(p.Prompt, p.Answer)).ToList(), taskReward, generation, reference, referenceSampler,
            rewardModel is null ? null : items => rewardModel(items.Select(x => (x.Prompt.Text, x.Completion)).ToList()), batchSize);

    /// <summary>
    /// Samples a completion per prompt (a conversation is continued as the assistant, as the policy's encoder renders
    /// it) and measures it. The task reward reads a conversation's last user message (<see cref="PromptInput.TaskText"/>);
    /// <paramref name="judge"/> gets the prompts themselves, so a reward model can render conversations its own way.
    /// <paramref name="asReference"/>, when given, is entered while <paramref name="referenceSampler"/> samples: the
    /// policy itself with its LoRA adapters switched off is the reference, with no copy of the weights.
    /// </summary>
    public static EvalResult Run(
        PolicyModel policy,
        IReadOnlyList<PromptInput> prompts,
        Func<string, string, string?, double>? taskReward,
        GenerationOptions generation,
        IReferencePolicy? reference = null,
        PolicyModel? referenceSampler = null,
        Func<IReadOnlyList<(PromptInput Prompt, string Completion)>, float[]>? judge = null,
        int batchSize = 64,
        Func<IDisposable>? asReference = null)
    {
        var (completions, tokens, logps) = Sample(policy, prompts, generation, batchSize);
        var rewards = taskReward is null ? [] : prompts.Select((p, i) => taskReward(p.TaskText, completions[i], p.Answer)).ToArray();
        var metrics = new Dictionary<string, double> { ["eval/length"] = tokens.Average(t => t.Length) };
        if (taskReward is not null) metrics["eval/reward"] = rewards.Average();
        if (reference is not null)
        {
            var promptIds = prompts.Select(p => p.Encode(policy.Encoder)).ToList();
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
        if (referenceSampler is not null && judge is not null)
        {
            string[] refCompletions;
            using (asReference?.Invoke()) (refCompletions, _, _) = Sample(referenceSampler, prompts, generation, batchSize);
            var mine = judge(prompts.Select((p, i) => (p, completions[i])).ToList());
            var theirs = judge(prompts.Select((p, i) => (p, refCompletions[i])).ToList());
            metrics["eval/win_rate"] = mine.Zip(theirs).Average(x => x.First > x.Second ? 1.0 : x.First == x.Second ? 0.5 : 0.0);
            if (taskReward is not null) metrics["eval/reference_reward"] = prompts.Select((p, i) => taskReward(p.TaskText, refCompletions[i], p.Answer)).Average();
        }
        return new EvalResult(metrics, prompts.Select(p => p.Text).ToArray(), completions, rewards);
    }

    /// <summary>Plain-text prompts (see the <see cref="PromptInput"/> overload).</summary>
    public static (string[] Texts, int[][] Tokens, float[][] LogProbs) Sample(PolicyModel policy, IReadOnlyList<(string Prompt, string? Answer)> prompts, GenerationOptions generation, int batchSize = 64) =>
        Sample(policy, prompts.Select(p => PromptInput.Plain(p.Prompt, p.Answer)).ToList(), generation, batchSize);

    /// <summary>
    /// Samples completions in batches: texts, tokens (the stop token included when one ended the sequence), per-token
    /// log π. Generation stops on any of the encoder's end ids (EOS, the template's end of turn) unless
    /// <paramref name="generation"/> names its own.
    /// </summary>
    public static (string[] Texts, int[][] Tokens, float[][] LogProbs) Sample(PolicyModel policy, IReadOnlyList<PromptInput> prompts, GenerationOptions generation, int batchSize = 64)
    {
        var texts = new List<string>(); var tokens = new List<int[]>(); var logps = new List<float[]>();
        var stop = generation.StopTokenIds ?? policy.Encoder.EndIds.Order().ToList();
        for (int i = 0; i < prompts.Count; i += batchSize)
        {
            var chunk = prompts.Skip(i).Take(batchSize).Select(p => p.Encode(policy.Encoder)).ToList();
            var options = (generation.Seed is long s ? generation with { Seed = s + i } : generation) with { StopTokenIds = stop };
            var result = TextGenerator.Generate(policy.Model, chunk, options, policy.Tokenizer.PadId, policy.Tokenizer.EosId);
            tokens.AddRange(result.Tokens);
            logps.AddRange(result.LogProbs);
            texts.AddRange(result.Tokens.Select(t => policy.Tokenizer.Decode(t)));
        }
        return (texts.ToArray(), tokens.ToArray(), logps.ToArray());
    }
}
