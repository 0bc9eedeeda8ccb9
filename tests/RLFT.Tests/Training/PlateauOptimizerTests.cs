using Rlft.Policy.Training;
using Parameter = TorchSharp.Modules.Parameter;
using OptimizerOptions = Rlft.Policy.Training.OptimizerOptions;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary><c>schedule = plateau</c> inside <see cref="TrainingOptimizer"/>: warmup first, then the plateau's rate, saved and restored.</summary>
public class PlateauOptimizerTests
{
    static OptimizerOptions Plateau(int warmup = 0) => new()
    {
        LearningRate = 0.1, WarmupSteps = warmup, Schedule = LrSchedule.Plateau, TotalSteps = 100,
        Plateau = new PlateauOptions { Factor = 0.5, Patience = 2, MinLr = 0.02 },
    };

    static double Step(TrainingOptimizer optimizer, Parameter w)
    {
        optimizer.Backward((w * w).sum());
        return optimizer.Step().LearningRate;
    }

    [Fact]
    public void Warmup_ramps_to_the_plateau_rate_which_drops_on_plateaus_down_to_min_lr()
    {
        var w = new Parameter(ones(3));
        using var optimizer = new TrainingOptimizer([w], Plateau(warmup: 2));
        Assert.Equal(0.05, Step(optimizer, w), 12);                          // warmup: 0.1 · 1/2
        Assert.Equal(0.1, Step(optimizer, w), 12);
        Assert.Equal(0.1, Step(optimizer, w), 12);
        Assert.False(optimizer.ObserveMetric(1.0));
        Assert.False(optimizer.ObserveMetric(1.0));                          // 1 bad
        Assert.True(optimizer.ObserveMetric(1.2));                           // 2 bad = patience
        Assert.Equal(0.05, Step(optimizer, w), 12);
        Assert.False(optimizer.ObserveMetric(3));
        Assert.True(optimizer.ObserveMetric(3));
        Assert.Equal(0.025, Step(optimizer, w), 12);
        optimizer.ObserveMetric(3);
        Assert.True(optimizer.ObserveMetric(3));
        Assert.Equal(0.02, Step(optimizer, w), 12);                          // 0.0125 floored at min-lr
        optimizer.ObserveMetric(3);
        Assert.False(optimizer.ObserveMetric(3));                            // at min-lr: nothing left to drop
        Assert.Equal(0.02, Step(optimizer, w), 12);
    }

    [Fact]
    public void The_plateau_state_is_saved_and_restored_with_the_optimizer()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-plateau").FullName;
        try
        {
            var w = new Parameter(ones(3));
            using var optimizer = new TrainingOptimizer([w], Plateau());
            Step(optimizer, w);
            foreach (var m in new[] { 1.0, 2.0, 2.0, 0.5, 0.7 }) optimizer.ObserveMetric(m);
            optimizer.Save(Path.Combine(dir, "optimizer.pt"));

            var w2 = new Parameter(ones(3));
            using var restored = new TrainingOptimizer([w2], Plateau());
            restored.Load(Path.Combine(dir, "optimizer.pt"));
            Assert.Equal(optimizer.Plateau!.SaveState(), restored.Plateau!.SaveState());
            Assert.Equal(0.05, restored.Plateau.LearningRate, 12);
            Assert.Equal(0.5, restored.Plateau.Best);
            Assert.Equal(1, restored.Plateau.BadEvaluations);
            Assert.True(restored.ObserveMetric(0.9));                        // the second bad one in a row drops, as it would have
            Assert.Equal(0.025, Step(restored, w2), 12);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Other_schedules_take_no_metric_and_bad_plateau_settings_name_their_key()
    {
        var w = new Parameter(ones(3));
        using var linear = new TrainingOptimizer([w], new OptimizerOptions());
        Assert.Contains("not plateau", Assert.Throws<InvalidOperationException>(() => linear.ObserveMetric(1)).Message);
        Assert.Null(linear.Plateau);
        Assert.StartsWith("optimizer.plateau.factor: 1 is outside (0, 1)", Assert.Throws<OptionException>(() =>
            (Plateau() with { Plateau = new PlateauOptions { Factor = 1 } }).Validate()).Message);
        Assert.StartsWith("optimizer.plateau.patience: must be a positive integer", Assert.Throws<OptionException>(() =>
            (Plateau() with { Plateau = new PlateauOptions { Patience = 0 } }).Validate()).Message);
        Assert.StartsWith("optimizer.plateau.min-lr: 0.5 is above the learning rate 0.1", Assert.Throws<OptionException>(() =>
            (Plateau() with { Plateau = new PlateauOptions { MinLr = 0.5 } }).Validate()).Message);
    }
}
