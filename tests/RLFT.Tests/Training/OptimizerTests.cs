using Rlft.Policy.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

public class OptimizerTests
{
    static nn.Module<Tensor, Tensor> TinyModel(int seed)
    {
        manual_seed(seed);
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 5));
    }

    static Tensor SftLossOn(nn.Module<Tensor, Tensor> model, Tensor x, Tensor y)
    {
        var logp = nn.functional.log_softmax(model.call(x), -1).gather(1, y.unsqueeze(1)).squeeze(1);
        return Losses.SftLoss(logp.unsqueeze(0), ones_like(logp).unsqueeze(0)).Loss;
    }

    [Fact]
    public void Accumulating_eight_micro_batches_of_one_equals_one_batch_of_eight()
    {
        using var _ = NewDisposeScope();
        manual_seed(3);
        var x = randn(8, 4);
        var y = randint(0, 5, 8);
        var a = TinyModel(1);
        var b = TinyModel(1);
        var optA = new TrainingOptimizer(a.parameters(), new OptimizerOptions { LearningRate = 0.1, MaxGradNorm = 0 });
        var optB = new TrainingOptimizer(b.parameters(), new OptimizerOptions { LearningRate = 0.1, MaxGradNorm = 0, GradientAccumulationSteps = 8 });

        optA.Backward(SftLossOn(a, x, y));
        Assert.True(optA.Step().Applied);
        for (int i = 0; i < 8; i++)
        {
            optB.Backward(SftLossOn(b, x[i..(i + 1)], y[i..(i + 1)]));
            var report = optB.Step();
            Assert.Equal(i == 7, report.Applied);
        }
        foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
            Assert.True(pa.allclose(pb, rtol: 1e-5, atol: 1e-6), "accumulated update differs from the full-batch update");
    }

    [Fact]
    public void The_scoped_chunked_AdamW_update_is_TorchSharps_AdamW_to_the_last_bits()
    {
        using var _ = NewDisposeScope();
        // A parameter of more than one 2^20-value chunk (not a multiple of it), a small one, a non-contiguous one; the
        // reference starts from copies (not from a second seeded draw, which a test on another thread could interleave).
        manual_seed(11);
        TorchSharp.Modules.Parameter[] ours = [new(randn(1031, 1100) * 0.02), new(randn(7)), new(randn(6, 5).t())];
        var theirs = ours.Select(p => new TorchSharp.Modules.Parameter(p.detach().clone())).ToArray();
        theirs[2] = new TorchSharp.Modules.Parameter(ours[2].detach().t().clone().t());   // non-contiguous like ours
        Assert.True(TrainingOptimizer.AdamChunkValues < ours[0].numel() && ours[0].numel() % TrainingOptimizer.AdamChunkValues != 0);
        Assert.False(ours[2].is_contiguous());
        var options = new OptimizerOptions { LearningRate = 3e-3, WeightDecay = 0.1, Beta2 = 0.99, Epsilon = 1e-6, MaxGradNorm = 0, Schedule = LrSchedule.Constant, WarmupSteps = 0 };
        using var opt = new TrainingOptimizer(ours, options);
        using var reference = optim.AdamW(theirs, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
        manual_seed(12);
        for (int step = 0; step < 5; step++)
        {
            var targets = ours.Select(p => randn(p.shape)).ToList();
            opt.Backward(ours.Zip(targets, (p, t) => (p * t).sum() + p.square().sum()).Aggregate((a, b) => a + b));
            Assert.True(opt.Step().Applied);
            reference.zero_grad();
            theirs.Zip(targets, (p, t) => (p * t).sum() + p.square().sum()).Aggregate((a, b) => a + b).backward();
            reference.step();
            foreach (var (a, b) in ours.Zip(theirs))
            {
                // Elementwise, but libtorch's vectorised and scalar loops may round a fused multiply-add differently
                // where slices split a tensor elsewhere: a last-bit difference at most, never a different update.
                double worst = ((a - b).abs() / (b.abs() + 1e-12)).max().item<float>();
                Assert.True(worst <= 2.5e-7, $"step {step}: parameter {string.Join("x", a.shape)} is {worst:e2} from TorchSharp's AdamW (relative)");
            }
        }
    }

    [Fact]
    public void A_non_finite_loss_skips_the_update_and_leaves_weights_untouched()
    {
        using var _ = NewDisposeScope();
        var model = TinyModel(2);
        var opt = new TrainingOptimizer(model.parameters(), new OptimizerOptions { LearningRate = 0.1 });
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        var x = randn(2, 4);
        opt.Backward(model.call(x).sum() * float.NaN);
        var report = opt.Step();
        Assert.True(report.Skipped);
        Assert.False(report.Applied);
        Assert.Equal(1, opt.SkippedSteps);
        Assert.Equal(0, opt.OptimizerStep);
        foreach (var (p, q) in model.parameters().Zip(before)) Assert.True(p.Equals(q));

        // The next finite step works normally.
        opt.Backward(model.call(x).sum());
        Assert.True(opt.Step().Applied);
    }

    [Fact]
    public void Warmup_then_cosine_and_linear_schedules()
    {
        using var _ = NewDisposeScope();
        var model = TinyModel(0);
        var cos = new TrainingOptimizer(model.parameters(), new OptimizerOptions { LearningRate = 1.0, WarmupSteps = 4, TotalSteps = 14, Schedule = LrSchedule.Cosine, MinLrRatio = 0.1 });
        Assert.Equal(0.25, cos.LearningRateAt(0), 12);
        Assert.Equal(1.0, cos.LearningRateAt(3), 12);
        Assert.Equal(1.0, cos.LearningRateAt(4), 12);
        Assert.Equal(0.1 + 0.9 * 0.5, cos.LearningRateAt(9), 12);   // halfway through the decay
        Assert.Equal(0.1, cos.LearningRateAt(14), 12);
        Assert.Equal(0.1, cos.LearningRateAt(100), 12);
        var lin = new TrainingOptimizer(model.parameters(), new OptimizerOptions { LearningRate = 2.0, TotalSteps = 10 });
        Assert.Equal(1.0, lin.LearningRateAt(5), 12);
    }

    [Fact]
    public void Sft_gradient_matches_finite_differences()
    {
        using var _ = NewDisposeScope();
        manual_seed(5);
        var model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 6));
        model.to(ScalarType.Float64);
        var x = randn(5, 3, dtype: ScalarType.Float64);
        var y = randint(0, 6, 5);
        SftLossOn(model, x, y).backward();
        var w = model.parameters().First();
        var analytic = w.grad!.clone();
        const double h = 1e-6;
        using (no_grad())
        {
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 3; j++)
                {
                    double orig = w[i, j].item<double>();
                    w[i, j] = orig + h;
                    double up = SftLossOn(model, x, y).item<double>();
                    w[i, j] = orig - h;
                    double down = SftLossOn(model, x, y).item<double>();
                    w[i, j] = orig;
                    Assert.Equal((up - down) / (2 * h), analytic[i, j].item<double>(), 6);
                }
        }
    }

    [Fact]
    public void Optimizer_state_round_trips_for_exact_resume()
    {
        using var _ = NewDisposeScope();
        string dir = Directory.CreateTempSubdirectory("rlft-opt").FullName;
        var x = randn(4, 4);
        var a = TinyModel(7);
        var optA = new TrainingOptimizer(a.parameters(), new OptimizerOptions { LearningRate = 0.05, TotalSteps = 10 });
        for (int i = 0; i < 3; i++) { optA.Backward(a.call(x).square().mean()); optA.Step(); }
        optA.Save(Path.Combine(dir, "optim.bin"));
        var b = TinyModel(7);
        using (no_grad())
            foreach (var (pb, pa) in b.parameters().Zip(a.parameters())) pb.copy_(pa);
        var optB = new TrainingOptimizer(b.parameters(), new OptimizerOptions { LearningRate = 0.05, TotalSteps = 10 });
        optB.Load(Path.Combine(dir, "optim.bin"));
        Assert.Equal(3, optB.OptimizerStep);
        optA.Backward(a.call(x).square().mean()); optA.Step();
        optB.Backward(b.call(x).square().mean()); optB.Step();
        foreach (var (pa, pb) in a.parameters().Zip(b.parameters())) Assert.True(pa.Equals(pb), "resumed optimizer diverged");
        Directory.Delete(dir, true);
    }
}
