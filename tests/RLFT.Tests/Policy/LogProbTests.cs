using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

public class LogProbTests
{
    [Fact]
    public void Gathered_log_probs_equal_the_naive_log_softmax()
    {
        var logits = randn(new long[] { 3, 5, 11 }, generator: new Generator(1)) * 4;
        var targets = randint(11, new long[] { 3, 5 }, generator: new Generator(2));
        var naive = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
        Assert.True(LogProbs.OfTargets(logits, targets).allclose(naive, 1e-6, 1e-6));
    }

    [Fact]
    public void Completion_log_probs_match_full_sequence_log_probs_and_train_every_parameter()
    {
        using var model = TinyModels.Create("qwen2", std: 0.05);
        int[][] prompts = [[3, 4, 5, 6], [7]], completions = [[8, 9], [10, 11, 12]];
        var value = new ValueHead(32);
        model.train();
        using var lp = LogProbs.OfCompletions(model, prompts, completions, padId: 0);
        Assert.Equal(new long[] { 2, 3 }, lp.LogProbs.shape);
        Assert.Equal(new float[] { 0, 1, 1, 1, 1, 1 }, lp.Mask.data<float>().ToArray());
        // Row 0 alone: the last two full-sequence log-probs are its completion's.
        using (no_grad())
        {
            var full = LogProbs.OfSequences(model, tensor(new long[] { 3, 4, 5, 6, 8, 9 }).unsqueeze(0), null);
            Assert.True(full[0].narrow(0, 3, 2).allclose(lp.LogProbs[0].narrow(0, 1, 2), 1e-5, 1e-5));
        }
        // Values read at the positions that predicted each completion token; a PPO-like loss reaches every weight.
        long t = lp.InputIds.shape[1];
        var values = value.forward(lp.HiddenStates).narrow(1, t - 4, 3);              // (B, C)
        var loss = -(lp.LogProbs * lp.Mask).sum() + (values * lp.Mask).pow(2).sum();
        loss.backward();
        foreach (var (name, p) in model.named_parameters().Concat(value.named_parameters()))
            Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"{name} got no gradient");
    }
}
