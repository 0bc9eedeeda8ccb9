using Rlft.Policy.Generation;
using Rlft.Policy.Runtime;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>
/// Decoding steps run libtorch's ops inline on the generating thread while RLFT's kernels keep splitting: the count
/// changes for that thread only and comes back, and the tokens are the ones the full thread count gives.
/// </summary>
[Collection(IntraOpThreadCount.Name)]
public class DecodeThreadsTests
{
    [Fact]
    public void Inside_the_scope_libtorch_runs_inline_on_this_thread_only_and_the_kernels_keep_the_count()
    {
        int threads = get_num_threads();
        Assert.SkipWhen(threads <= 1, "one intra-op thread: there is nothing to run inline");
        int fresh = 0;
        using (DecodeThreads.Inline(CPU))
        {
            Assert.Equal(1, get_num_threads());
            Assert.Equal(threads, DecodeThreads.KernelParts);
            // A thread first touching libtorch now (torch.set_num_threads would have set its count to 1 for good).
            var t = new Thread(() => fresh = get_num_threads());
            t.Start(); t.Join();
            using (DecodeThreads.Inline(CPU)) Assert.Equal(threads, DecodeThreads.KernelParts);   // nested: unchanged
            Assert.Equal(1, get_num_threads());
        }
        Assert.Equal(threads, fresh);
        Assert.Equal(threads, get_num_threads());
        Assert.Equal(threads, DecodeThreads.KernelParts);
    }

    [Theory]
    [InlineData("gpt2", 0.0, 0)]
    [InlineData("llama", 1.0, 0)]
    [InlineData("gpt2", 1.0, 4)]
    public void Generation_gives_the_same_tokens_as_with_one_thread_and_restores_the_count(string arch, double temperature, int slots)
    {
        int threads = get_num_threads();
        using var model = TinyModels.Create(arch, seed: 3);
        var prompts = new List<int[]> { new[] { 1, 5, 9, 2 }, new[] { 3, 4 }, new[] { 7, 7, 7, 7, 7, 1 }, new[] { 2, 8, 6 }, new[] { 4 }, new[] { 9, 9, 3 } };
        var options = new GenerationOptions { MaxNewTokens = 12, Temperature = temperature, Seed = 11, Slots = slots, StopTokenIds = [5] };
        var full = TextGenerator.Generate(model, prompts, options, 0, 0);
        Assert.Equal(threads, get_num_threads());
        GenerationResult one;
        set_num_threads(1);
        try { one = TextGenerator.Generate(model, prompts, options, 0, 0); }
        finally { set_num_threads(threads); }
        for (int i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(one.Tokens[i], full.Tokens[i]);
            for (int j = 0; j < one.Tokens[i].Length; j++) Assert.Equal(one.LogProbs[i][j], full.LogProbs[i][j], 1e-5f);
        }
    }
}

/// <summary>Tests that set libtorch's intra-op thread count, which threads first touching libtorch start with, run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IntraOpThreadCount
{
    public const string Name = "intra-op thread count";
}
