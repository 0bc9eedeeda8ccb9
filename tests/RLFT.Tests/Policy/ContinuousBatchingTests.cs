using FsCheck.Xunit;
using Rlft.Policy.Generation;
using Rlft.Policy.Models;

namespace Rlft.Tests.Policy;

/// <summary>
/// Continuous batching must not change what any prompt generates: each prompt's completion equals the one it gets
/// decoded alone (greedy: identical tokens; sampled: identical tokens from its own seeded stream), whatever the
/// number of slots, the prompt lengths and where each sequence stops.
/// </summary>
public class ContinuousBatchingTests
{
    const int Pad = 0, Eos = 96;
    static readonly string[] Archs = ["gpt2", "llama", "gemma3", "mistral"];
    static readonly Dictionary<string, CausalLM> Models = new();

    // One model per architecture for the whole class: building them dominates a property's cost.
    static CausalLM Model(string arch)
    {
        lock (Models)
        {
            if (!Models.TryGetValue(arch, out var model)) Models[arch] = model = TinyModels.Create(arch, std: 0.2);
            return model;
        }
    }

    /// <summary>
    /// Random prompts (1–9 of 1–14 tokens), slots (1–4), a budget of 1–14 new tokens and 0–24 stop tokens drawn
    /// from the vocabulary (so sequences stop at spread-out lengths); greedy or sampled (temperature, top-k, top-p).
    /// </summary>
    static (CausalLM Model, int[][] Prompts, GenerationOptions Options) Case(int seed, bool sampled)
    {
        var rng = new Random(seed);
        var model = Model(Archs[rng.Next(Archs.Length)]);
        var prompts = Enumerable.Range(0, rng.Next(1, 10))
            .Select(_ => Enumerable.Range(0, rng.Next(1, 15)).Select(_ => rng.Next(1, TinyModels.Vocab)).ToArray()).ToArray();
        var stops = Enumerable.Range(0, rng.Next(0, 25)).Select(_ => rng.Next(1, TinyModels.Vocab)).Distinct().ToList();
        var options = new GenerationOptions
        {
            MaxNewTokens = rng.Next(1, 15),
            Temperature = sampled ? 0.7 + rng.NextDouble() : 0,
            TopK = sampled && rng.Next(2) == 0 ? rng.Next(1, 40) : 0,
            TopP = sampled && rng.Next(2) == 0 ? 0.5 + rng.NextDouble() / 2 : 1.0,
            Seed = rng.Next(),
            StopTokenIds = stops.Count == 0 ? [-1] : stops,
            Slots = rng.Next(1, 5),
        };
        return (model, prompts, options);
    }

    static void AssertSameAsAlone(CausalLM model, int[][] prompts, GenerationOptions options)
    {
        var continuous = TextGenerator.Generate(model, prompts, options, Pad, Eos);
        for (int i = 0; i < prompts.Length; i++)
        {
            var alone = TextGenerator.Generate(model, [prompts[i]], options with { Slots = 0, FirstPromptIndex = i }, Pad, Eos);
            Assert.Equal(alone.Tokens[0], continuous.Tokens[i]);
            Assert.Equal(alone.Stopped[0], continuous.Stopped[i]);
            for (int j = 0; j < alone.Tokens[0].Length; j++)
            {
                // Only the batch size changes the matmuls' rounding (measured ≤ 3e-6; bitwise with one slot, below).
                Assert.Equal(alone.LogProbs[0][j], continuous.LogProbs[i][j], 1e-5f);
                Assert.Equal(alone.SampledLogProbs[0][j], continuous.SampledLogProbs[i][j], 1e-5f);
            }
        }
    }

    [Property(MaxTest = 40)]
    public void Greedy_continuous_batching_generates_what_each_prompt_generates_alone(int seed)
    {
        var (model, prompts, options) = Case(seed, sampled: false);
        AssertSameAsAlone(model, prompts, options);
    }

    [Property(MaxTest = 40)]
    public void Sampled_continuous_batching_draws_each_prompt_from_its_own_stream(int seed)
    {
        var (model, prompts, options) = Case(seed, sampled: true);
        AssertSameAsAlone(model, prompts, options);
    }

    [Property(MaxTest = 25)]
    public void Static_and_continuous_batching_sample_the_same_completions(int seed)
    {
        var (model, prompts, options) = Case(seed, sampled: true);
        var continuous = TextGenerator.Generate(model, prompts, options, Pad, Eos);
        var batched = TextGenerator.Generate(model, prompts, options with { Slots = 0 }, Pad, Eos);
        Assert.Equal(batched.Tokens, continuous.Tokens);
        Assert.Equal(batched.Stopped, continuous.Stopped);
    }

    [Fact]
    public void A_slot_is_reused_as_soon_as_its_sequence_stops()
    {
        // One slot: every prompt waits for the previous one, so a refill bug (stale cache rows, positions carried
        // over) would show in every completion after the first. Stop tokens end the sequences at different lengths.
        var model = Model("llama");
        int[][] prompts = [[5, 17, 33, 2, 9, 41, 8], [12, 3], [60, 61, 62, 63], [7], [44, 45, 46, 47, 48, 49, 50, 51, 52, 53]];
        var free = TextGenerator.Generate(model, prompts, new GenerationOptions { MaxNewTokens = 12, Temperature = 0, StopTokenIds = [-1] }, Pad, Eos);
        var stops = new[] { free.Tokens[0][2], free.Tokens[2][6] };
        var options = new GenerationOptions { MaxNewTokens = 12, Temperature = 0, StopTokenIds = stops, Slots = 1 };
        AssertSameAsAlone(model, prompts, options);
        var result = TextGenerator.Generate(model, prompts, options, Pad, Eos);
        Assert.True(result.Stopped[0]);
        Assert.Equal(free.Tokens[0].TakeWhile(t => !stops.Contains(t)).Count() + 1, result.Tokens[0].Length);
        Assert.InRange(result.Tokens[0].Length, 1, 3);
        Assert.Contains(result.Tokens, t => t.Length == 12);   // the budget still ends sequences that never stop
        // With one slot every step has batch 1, as alone: the log-probs are identical to the bit.
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(TextGenerator.Generate(model, [prompts[i]], options with { Slots = 0 }, Pad, Eos).LogProbs[0], result.LogProbs[i]);
    }

    [Fact]
    public void Sampling_streams_depend_on_the_seed_and_the_prompt_index_only()
    {
        var a = new SequenceRandom(11, 3);
        var b = new SequenceRandom(11, 3);
        var draws = Enumerable.Range(0, 64).Select(_ => a.NextFloat()).ToArray();
        Assert.Equal(draws, Enumerable.Range(0, 64).Select(_ => b.NextFloat()));
        Assert.All(draws, u => Assert.InRange(u, 0f, 0.99999995f));
        // Neighbouring seeds and indices give unrelated streams.
        foreach (var other in new[] { new SequenceRandom(11, 4), new SequenceRandom(12, 3), new SequenceRandom(12, 2) })
            Assert.NotEqual(draws, Enumerable.Range(0, 64).Select(_ => other.NextFloat()));
        Assert.InRange(draws.Average(), 0.35, 0.65);
    }
}
