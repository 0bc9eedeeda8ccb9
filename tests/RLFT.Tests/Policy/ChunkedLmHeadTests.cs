using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using Rlft.Policy.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>
/// The chunked LM head against the plain one: the same log-probs, entropies and KL, and the same gradients on every
/// parameter, with chunks small enough that every batch spans several (and one chunk that ends mid-row).
/// </summary>
public class ChunkedLmHeadTests
{
    /// <summary>Largest ‖a − b‖ / ‖b‖ over the parameters' gradients of two identical models.</summary>
    internal static double WorstRelativeGradientError(CausalLM a, CausalLM b)
    {
        var other = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        double worst = 0;
        foreach (var (name, p) in a.named_parameters())
        {
            var g = p.grad ?? throw new Xunit.Sdk.XunitException($"{name}: no gradient (a)");
            var r = other[name].grad ?? throw new Xunit.Sdk.XunitException($"{name}: no gradient (b)");
            double norm = r.norm().ToDouble();
            Assert.True(norm > 0, $"{name}: zero reference gradient");
            worst = Math.Max(worst, (g - r).norm().ToDouble() / norm);
        }
        return worst;
    }

    static CausalLM Twin(CausalLM model)
    {
        var twin = ModelFactory.Create(model.Config);
        using (no_grad())
        {
            var source = model.state_dict();
            foreach (var (name, p) in twin.state_dict()) p.copy_(source[name]);
        }
        twin.eval();
        return twin;
    }

    [Theory]
    [InlineData("gpt2", true, true)]     // tied head, learned positions
    [InlineData("llama", true, true)]    // separate lm_head
    [InlineData("gemma2", true, true)]   // final logit soft-cap inside the head
    [InlineData("gpt2", false, false)]   // log-probs alone: the log-softmax's gradient by hand (ChunkedLmHead.LogProbGradient)
    [InlineData("llama", false, false)]
    [InlineData("gemma2", false, false)]
    [InlineData("gpt2", true, false)]    // an entropy for a metric only: by hand too
    [InlineData("gemma2", true, false)]
    public void Log_probs_and_entropy_and_their_gradients_equal_the_unchunked_head(string arch, bool entropy, bool entropyInLoss)
    {
        using var chunked = TinyModels.Create(arch, std: 0.05);
        using var plain = Twin(chunked);
        using var ids = randint(3, TinyModels.Vocab, [3, 9], generator: new Generator(7));
        using var weights = randn([3, 8], generator: new Generator(8));   // a loss that weighs every position differently

        // Chunked: 5 rows per chunk over 3 × 8 = 24 positions (the last chunk partial, chunks crossing rows).
        using var outC = chunked.Forward(ids, logitsToKeep: -1);
        var (lpC, entC) = ChunkedLmHead.TokenStats(chunked, outC.HiddenStates.narrow(1, 0, 8), ids.narrow(1, 1, 8), entropy, chunkRows: 5);
        ((lpC * weights).sum() + (entropyInLoss ? 0.3f * (entC! * weights).sum() : 0f)).backward();

        // Plain: full (B, T, V) logits, the naive log-softmax and entropy.
        using var outP = plain.Forward(ids);
        var logp = outP.Logits.narrow(1, 0, 8).log_softmax(-1);                                           // (B, T, V)
        var lpP = logp.gather(-1, ids.narrow(1, 1, 8).unsqueeze(-1)).squeeze(-1);                         // (B, T)
        var entP = -(logp.exp() * logp).sum(-1);
        ((lpP * weights).sum() + (entropyInLoss ? 0.3f * (entP * weights).sum() : 0f)).backward();

        Assert.True(lpC.allclose(lpP, 1e-5, 1e-5), "log-probs differ");
        Assert.Equal(entropy, entC is not null);
        if (entropy) Assert.True(entC!.allclose(entP, 1e-5, 1e-5), "entropies differ");
        double worst = WorstRelativeGradientError(chunked, plain);
        Assert.True(worst < 1e-6, $"relative gradient error {worst:E2}");
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("gemma2")]
    public void The_hand_written_log_softmax_gradient_is_bit_for_bit_autograds(string arch)
    {
        using var byHand = TinyModels.Create(arch, std: 0.05);
        using var byAutograd = Twin(byHand);
        using var ids = randint(3, TinyModels.Vocab, [3, 9], generator: new Generator(7));
        using var weights = randn([3, 8], generator: new Generator(8));
        foreach (var (model, viaAutograd) in new[] { (byHand, false), (byAutograd, true) })
        {
            using var output = model.Forward(ids, logitsToKeep: -1);
            // An entropy in the loss (times zero) makes the chunk differentiate Stats through autograd.
            var (lp, ent) = ChunkedLmHead.TokenStats(model, output.HiddenStates.narrow(1, 0, 8), ids.narrow(1, 1, 8), entropy: viaAutograd, chunkRows: 5);
            ((lp * weights).sum() + (viaAutograd ? 0f * ent!.sum() : 0f)).backward();
        }
        var other = byAutograd.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        foreach (var (name, p) in byHand.named_parameters())
            Assert.True(p.grad!.allclose(other[name].grad!, rtol: 0, atol: 0), $"{name}: the gradients differ");
    }

    [Fact]
    public void Completion_log_probs_through_the_chunked_head_match_the_full_logits_to_1e_6_in_gradient()
    {
        using var chunked = TinyModels.Create("qwen2", std: 0.05);
        using var plain = Twin(chunked);
        int[][] prompts = [[3, 4, 5, 6], [7], [9, 10]], completions = [[8, 9], [10, 11, 12, 13], [14]];
        using var lp = LogProbs.OfCompletions(chunked, prompts, completions, padId: 0);
        (lp.LogProbs.sum() * 1.0).backward();

        // The same completions, scored from the model's full logits as before chunking.
        using var batch = TokenBatch.LeftPad(prompts.Zip(completions, (p, c) => p.Concat(c).ToArray()).ToList(), 0, CPU);
        using var output = plain.Forward(batch.InputIds, batch.AttentionMask);
        long t = batch.Length;
        var reference = LogProbs.OfTargets(output.Logits.narrow(1, t - 5, 4), batch.InputIds.narrow(1, t - 4, 4)) * lp.Mask;
        reference.sum().backward();

        Assert.True(lp.LogProbs.allclose(reference, 1e-5, 1e-5));
        Assert.True(WorstRelativeGradientError(chunked, plain) < 1e-6);
    }

    [Fact]
    public void Forward_kl_chunk_by_chunk_equals_the_full_vocabulary_kl_and_its_gradient()
    {
        // In float64: the two computations sum in different orders, which in fp32 alone differs by ~1e-6 relative in
        // the gradient on some CPUs; in float64 that noise is ~1e-14, so any real difference in the math shows.
        using var student = TinyModels.Create("llama", seed: 1, std: 0.05);
        using var plain = Twin(student);
        using var teacher = TinyModels.Create("llama", seed: 2, std: 0.05);
        foreach (var m in new[] { student, plain, teacher }) m.to(ScalarType.Float64);
        using var ids = randint(3, TinyModels.Vocab, [2, 7], generator: new Generator(3));
        using var mask = ones(2, 7, dtype: ScalarType.Float64);
        mask[0, 0] = tensor(0f);
        Tensor teacherHidden, teacherLogits;
        using (no_grad())
        {
            using var o = teacher.Forward(ids);
            teacherHidden = o.HiddenStates.clone();
            teacherLogits = o.Logits.clone();
        }
        using var s = student.Forward(ids, logitsToKeep: -1);
        var perToken = ChunkedLmHead.ForwardKl(student, s.HiddenStates, teacher, teacherHidden, temperature: 2.0, chunkRows: 3);
        var chunkedLoss = Masked.Mean(perToken, mask);
        chunkedLoss.backward();

        using var p = plain.Forward(ids);
        var plainLoss = Losses.ForwardKl(p.Logits, teacherLogits, mask, temperature: 2.0).Loss;
        plainLoss.backward();

        Assert.Equal(ScalarType.Float64, chunkedLoss.dtype);
        Assert.Equal(plainLoss.item<double>(), chunkedLoss.item<double>(), 12);
        double worst = WorstRelativeGradientError(student, plain);
        Assert.True(worst < 1e-10, $"worst relative gradient error {worst:E2}");
        Assert.All(teacher.parameters(), q => Assert.Null(q.grad));
    }

    [Fact]
    public void Without_autograd_the_head_keeps_no_graph_and_handles_empty_completions()
    {
        using var model = TinyModels.Create("gpt2");
        using var _ = no_grad();
        using var lp = LogProbs.OfCompletions(model, [[3, 4]], [[]], padId: 0, entropy: true);
        Assert.Equal(new long[] { 1, 0 }, lp.LogProbs.shape);
        Assert.Equal(new long[] { 1, 0 }, lp.Entropy!.shape);
        using var hidden = randn(2, 3, 32);
        var (values, _) = ChunkedLmHead.TokenStats(model, hidden, zeros(new long[] { 2, 3 }, dtype: ScalarType.Int64), chunkRows: 2);
        Assert.False(values.requires_grad);
    }

    [Fact]
    public void Rows_per_chunk_follow_the_byte_budget()
    {
        Assert.Equal(110, ChunkedLmHead.RowsPerChunk(151_936));            // 64 MiB of fp32 logits at Qwen2's vocabulary
        Assert.Equal(1, ChunkedLmHead.RowsPerChunk(151_936, chunkBytes: 16));
    }
}
