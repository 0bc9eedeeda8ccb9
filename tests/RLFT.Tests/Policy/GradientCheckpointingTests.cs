using Rlft.Policy.Generation;
using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>
/// Gradient checkpointing per block: the recomputation really happens (a block runs twice), and the gradients are the
/// plain backward's — for every family, with left padding, with LoRA adapters on a frozen base, and with adapter
/// dropout, whose random draws the recomputation must replay. Tolerance: 1e-6 relative per parameter (in practice the
/// recomputation repeats the same kernels, so they agree to the bit).
/// </summary>
[Collection(GlobalRandomState.Name)]
public class GradientCheckpointingTests
{
    const double Tolerance = 1e-6;

    /// <summary>A block that counts its forward runs: y = tanh(x W) + x.</summary>
    sealed class CountingBlock : nn.Module, IDecoderBlock
    {
        public Parameter w;
        public int Runs;
        public CountingBlock(long seed) : base(nameof(CountingBlock))
        {
            w = new Parameter(randn([6, 6], generator: new Generator((ulong)seed)) * 0.5);
            RegisterComponents();
        }
        public Tensor Forward(Tensor x, LayerContext ctx) { Runs++; return (x.matmul(w)).tanh() + x; }
    }

    [Fact]
    public void A_checkpointed_block_runs_again_in_backward_and_gives_the_plain_gradients()
    {
        var blocks = new[] { new CountingBlock(1), new CountingBlock(2) };
        var ctx = new LayerContext(new AttentionMask(null, true), null, null, null);
        using var x0 = randn([3, 6], generator: new Generator(3));

        var x = x0.clone().requires_grad_(true);
        DecoderStack.Run(blocks, x, ctx, checkpoint: true).square().sum().backward();
        Assert.All(blocks, b => Assert.Equal(2, b.Runs));                     // forward once, then once more in backward
        var checkpointed = blocks.Select(b => b.w.grad!.clone()).Append(x.grad!.clone()).ToList();

        foreach (var b in blocks) { b.w.grad = null; b.Runs = 0; }
        var y = x0.clone().requires_grad_(true);
        DecoderStack.Run(blocks, y, ctx, checkpoint: false).square().sum().backward();
        Assert.All(blocks, b => Assert.Equal(1, b.Runs));
        var plain = blocks.Select(b => b.w.grad!).Append(y.grad!).ToList();
        for (int i = 0; i < plain.Count; i++) Assert.True(checkpointed[i].allclose(plain[i], 1e-7, 1e-7), $"gradient {i}");
    }

    /// <summary>Two copies of one seeded model; the first checkpoints its blocks.</summary>
    static (CausalLM On, CausalLM Off) Twins(string arch)
    {
        var on = TinyModels.Create(arch, std: 0.05);
        var off = TinyModels.Create(arch, std: 0.05);
        on.GradientCheckpointing = true;
        on.train(); off.train();
        return (on, off);
    }

    /// <summary>A PPO-like loss on left-padded completions that reads both the log-probs and the hidden states.</summary>
    static void Backward(CausalLM model)
    {
        int[][] prompts = [[3, 4, 5, 6, 7], [8], [9, 10, 11]], completions = [[12, 13, 14], [15, 16], [17, 18, 19, 20]];
        using var lp = LogProbs.OfCompletions(model, prompts, completions, padId: 0);
        var loss = -(lp.LogProbs * lp.Mask).sum() + 0.1 * lp.HiddenStates.square().mean();
        loss.backward();
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("mistral")]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void Checkpointed_gradients_equal_the_plain_backward_in_every_family(string arch)
    {
        var (on, off) = Twins(arch);
        using (on) using (off)
        {
            Backward(on);
            Backward(off);
            double worst = ChunkedLmHeadTests.WorstRelativeGradientError(on, off);
            Assert.True(worst <= Tolerance, $"{arch}: relative gradient error {worst:E2}");
        }
    }

    [Fact]
    public void Lora_adapters_on_a_frozen_base_get_their_gradients_with_dropout_replayed()
    {
        var (on, off) = Twins("llama");
        using (on) using (off)
        {
            var config = new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.2, TargetModules = ["q_proj", "v_proj", "down_proj"] };
            foreach (var m in new[] { on, off })
            {
                LoraAdapters.Apply(m, config, seed: 4);
                // B starts at zero, which would make A's gradient zero; give both copies the same non-zero B.
                using var _ = no_grad();
                foreach (var (name, d) in m.DenseLayers().Where(l => l.Layer.HasAdapter))
                    d.lora_B!.weight!.copy_(randn(d.lora_B.weight!.shape, generator: new Generator((ulong)name.Length)) * 0.1);
                m.train();
            }
            // No input of the first block requires grad (the embeddings are frozen): the adapters' gradients
            // reach them only because the parameters are inputs of the checkpoint node.
            manual_seed(11); Backward(on);
            manual_seed(11); Backward(off);
            var plain = off.named_parameters().Where(p => p.parameter.requires_grad).ToDictionary(p => p.name, p => p.parameter.grad!);
            Assert.NotEmpty(plain);
            foreach (var (name, p) in on.named_parameters().Where(p => p.parameter.requires_grad))
            {
                Assert.NotNull(p.grad);
                double rel = (p.grad! - plain[name]).norm().item<float>() / plain[name].norm().item<float>();
                Assert.True(rel <= Tolerance, $"{name}: relative gradient error {rel:E2}");
            }
            Assert.All(on.named_parameters().Where(p => !p.parameter.requires_grad), p => Assert.Null(p.parameter.grad));
        }
    }

    [Fact]
    public void With_a_cache_or_without_autograd_the_flag_changes_nothing()
    {
        using var model = TinyModels.Create("qwen3");
        using var ids = tensor(new long[] { 3, 4, 5, 6 }).unsqueeze(0);
        Tensor Cached()
        {
            using var cache = model.CreateCache(1, 8);
            using var o = model.Forward(ids, cache: cache);   // under autograd: a cache rules checkpointing out
            return o.Logits.detach().clone();
        }
        Tensor NoGrad()
        {
            using var _ = no_grad();
            using var o = model.Forward(ids);
            return o.Logits.clone();
        }
        var (cached, noGrad) = (Cached(), NoGrad());
        model.GradientCheckpointing = true;
        Assert.True(Cached().Equals(cached));
        Assert.True(NoGrad().Equals(noGrad));
    }
}

/// <summary>
/// Tests that seed the process-wide generator and compare two runs that draw from it (dropout replayed by a
/// recomputation) run alone: a test running beside them would draw from the same generator in between.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRandomState
{
    public const string Name = "global random state";
}
