using Rlft.Policy.Generation;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

public class GenerationTests
{
    static readonly int[][] Prompts = [[5, 17, 33, 2, 9, 41, 8], [12, 3], [60, 61, 62, 63]];
    const int Pad = 0, Eos = 96;

    // The new families run past their sliding windows (gemma 4, phi3 6): prompts of up to 7 tokens plus 12 new ones.
    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void Greedy_tokens_are_identical_with_and_without_the_kv_cache(string arch)
    {
        using var model = TinyModels.Create(arch);
        var o = new GenerationOptions { MaxNewTokens = 12, Temperature = 0 };
        var cached = TextGenerator.Generate(model, Prompts, o, Pad, Eos);
        var recomputed = TextGenerator.Generate(model, Prompts, o with { UseKvCache = false }, Pad, Eos);
        Assert.Equal(cached.Tokens, recomputed.Tokens);
        for (int i = 0; i < Prompts.Length; i++)
            for (int j = 0; j < cached.LogProbs[i].Length; j++)
                Assert.Equal(recomputed.LogProbs[i][j], cached.LogProbs[i][j], 1e-4f);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void Batched_prompts_of_different_lengths_generate_what_each_generates_alone(string arch)
    {
        using var model = TinyModels.Create(arch);
        var o = new GenerationOptions { MaxNewTokens = 10, Temperature = 0 };
        var batched = TextGenerator.Generate(model, Prompts, o, Pad, Eos);
        for (int i = 0; i < Prompts.Length; i++)
        {
            var alone = TextGenerator.Generate(model, [Prompts[i]], o, Pad, Eos);
            Assert.Equal(alone.Tokens[0], batched.Tokens[i]);
            for (int j = 0; j < alone.LogProbs[0].Length; j++) Assert.Equal(alone.LogProbs[0][j], batched.LogProbs[i][j], 1e-4f);
        }
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Sampled_token_log_probs_equal_teacher_forced_log_probs_at_temperature_one(string arch)
    {
        using var model = TinyModels.Create(arch, std: 0.05);
        var o = new GenerationOptions { MaxNewTokens = 16, Temperature = 1.0, Seed = 7 };
        var gen = TextGenerator.Generate(model, Prompts, o, Pad, Eos);
        // Without truncation the distribution sampled from is the model's own.
        for (int i = 0; i < Prompts.Length; i++)
            for (int j = 0; j < gen.LogProbs[i].Length; j++) Assert.Equal(gen.LogProbs[i][j], gen.SampledLogProbs[i][j], 1e-5f);
        using var _ = no_grad();
        using var forced = LogProbs.OfCompletions(model, Prompts, gen.Tokens, Pad);
        var lp = forced.LogProbs.data<float>().ToArray();
        int c = (int)forced.LogProbs.shape[1];
        for (int i = 0; i < Prompts.Length; i++)
        {
            int len = gen.Tokens[i].Length, offset = c - len;
            for (int j = 0; j < len; j++) Assert.Equal(gen.LogProbs[i][j], lp[i * c + offset + j], 1e-4f);
        }
    }

    [Fact]
    public void Sampling_with_a_seed_is_reproducible_and_differs_across_seeds()
    {
        using var model = TinyModels.Create("llama", std: 0.05);
        var o = new GenerationOptions { MaxNewTokens = 20, Temperature = 1.0, TopK = 50, TopP = 0.95, Seed = 3 };
        var a = TextGenerator.Generate(model, Prompts, o, Pad, Eos);
        var b = TextGenerator.Generate(model, Prompts, o, Pad, Eos);
        var c = TextGenerator.Generate(model, Prompts, o with { Seed = 4 }, Pad, Eos);
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.NotEqual(a.Tokens, c.Tokens);
        // Truncation renormalises: the sampled distribution's log-prob is at least the model's.
        for (int i = 0; i < Prompts.Length; i++)
            for (int j = 0; j < a.LogProbs[i].Length; j++) Assert.True(a.SampledLogProbs[i][j] >= a.LogProbs[i][j] - 1e-5f);
    }

    [Fact]
    public void Top_k_of_one_is_greedy_and_stop_tokens_end_each_sequence_separately()
    {
        using var model = TinyModels.Create("gpt2");
        var greedy = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 8, Temperature = 0 }, Pad, Eos);
        var topk = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 8, TopK = 1, Seed = 1 }, Pad, Eos);
        Assert.Equal(greedy.Tokens, topk.Tokens);
        // Make row 0's third greedy token a stop token: row 0 ends there (token included), the others run on.
        int stopAt = greedy.Tokens[0][2];
        var stopped = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 8, Temperature = 0, StopTokenIds = [stopAt] }, Pad, Eos);
        int first = Array.IndexOf(greedy.Tokens[0], stopAt);
        Assert.Equal(greedy.Tokens[0][..(first + 1)], stopped.Tokens[0]);
        Assert.True(stopped.Stopped[0]);
        for (int i = 1; i < Prompts.Length; i++)
        {
            int k = Array.IndexOf(greedy.Tokens[i], stopAt);
            Assert.Equal(k < 0 ? greedy.Tokens[i] : greedy.Tokens[i][..(k + 1)], stopped.Tokens[i]);
        }
    }
}
