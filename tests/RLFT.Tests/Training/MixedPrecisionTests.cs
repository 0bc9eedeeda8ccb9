using TorchSharp;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>
/// bf16 compute with fp32 master weights. On CPU bf16 is slow, so only the tiny model runs here; the
/// learner turns this on by itself on CUDA (precision = auto).
/// </summary>
public class MixedPrecisionTests
{
    [Fact]
    public void Gradients_through_the_bf16_copy_match_fp32_gradients_and_land_on_fp32_masters()
    {
        var fp32 = TinyTask.Load();
        var master = TinyTask.Load();
        using var mp = new MixedPrecisionModel(master.Model);
        Assert.All(mp.Compute.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        var batch = TinyTask.Sft(16, 3);

        Tensor Loss(PolicyModel m)
        {
            var lp = m.LogProbsOf(batch.Select(b => m.Encoder.PromptCompletion(b.Item1, b.Item2)).ToList());
            return Losses.SftLoss(lp.LogProbs.to(ScalarType.Float32), lp.Mask.to(ScalarType.Float32)).Loss;
        }
        Loss(fp32).backward();
        Loss(new PolicyModel(mp.Compute, master.Tokenizer)).backward();
        mp.SyncGradients();

        foreach (var ((name, a), (_, b)) in fp32.Model.named_parameters().Zip(master.Model.named_parameters()))
        {
            Assert.Equal(ScalarType.Float32, b.grad!.dtype);
            double cos = nn.functional.cosine_similarity(a.grad!.flatten(), b.grad!.flatten(), 0).item<float>();
            Assert.True(cos > 0.98, $"{name}: cosine {cos:F4} between bf16-path and fp32 gradients");
        }
        Assert.All(mp.Compute.parameters(), p => Assert.True(p.grad is null || p.grad.abs().sum().ToDouble() == 0));
    }

    [Fact]
    public void Sft_with_bf16_compute_learns_and_keeps_the_copy_in_step_with_the_masters()
    {
        var master = TinyTask.Load();
        using var mp = new MixedPrecisionModel(master.Model);
        var compute = new PolicyModel(mp.Compute, master.Tokenizer);
        using var sft = new SftTrainer(compute, new OptimizerOptions { LearningRate = 2e-3, TotalSteps = 30 }, mixedPrecision: mp);
        var heldOut = TinyTask.Sft(32, 97);
        double before = sft.Loss(heldOut);
        var data = TinyTask.Sft(30 * 16, 5);
        for (int s = 0; s < 30; s++) sft.Step(data.Skip(s * 16).Take(16).ToList());
        double after = sft.Loss(heldOut);
        Assert.True(after < 0.7 * before, $"loss {before:F3} -> {after:F3}");
        foreach (var ((_, m), (_, c)) in master.Model.named_parameters().Zip(mp.Compute.named_parameters()))
        {
            Assert.Equal(ScalarType.Float32, m.dtype);
            Assert.True(m.to(ScalarType.BFloat16).Equals(c), "compute copy is not the cast of the master weights");
        }
    }
}
