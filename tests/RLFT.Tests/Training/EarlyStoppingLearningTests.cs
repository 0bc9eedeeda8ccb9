using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;

namespace Rlft.Tests.Training;

/// <summary>Early stopping on a deliberately tiny dataset: the held-out loss turns up, training stops, the best weights come back.</summary>
public class EarlyStoppingLearningTests(ITestOutputHelper output)
{
    [Fact]
    public void On_a_tiny_dataset_training_stops_and_restores_the_best_held_out_loss()
    {
        var policy = TinyTask.Load();
        var task = TaskFamily.Get("times");
        var train = TaskFamily.Sft(task, 4, 1).Select(e => (e.Prompt, e.Completion)).ToList();
        var heldOut = TaskFamily.Sft(task, 48, 2).Select(e => (e.Prompt, e.Completion)).ToList();
        using var sft = new SftTrainer(policy, new OptimizerOptions { LearningRate = 1e-2, Schedule = LrSchedule.Constant, TotalSteps = 400 });
        using var stopping = new EarlyStopping(new EarlyStoppingOptions { Patience = 3 }, Rlft.Policy.Training.Regularization.TrainableParameters.Of(policy.Model));
        var curve = new List<double>();
        int step = 0;
        EarlyStoppingReport? report = null;
        while (step < 400 && report?.Stop != true)
        {
            for (int i = 0; i < 5; i++, step++) sft.Step(train);
            curve.Add(sft.Loss(heldOut));
            report = stopping.Observe(curve[^1], step);
        }
        output.WriteLine($"held-out loss every 5 steps: {string.Join(" ", curve.Select(l => l.ToString("F3")))}; stopped at {step}, best {stopping.BestLoss:F4} at {stopping.BestStep}");
        Assert.True(report!.Stop, "the held-out loss on 4 training examples should stop improving within 400 steps");
        Assert.True(curve[^1] > stopping.BestLoss, "stopped on a worse loss than the best");
        Assert.True(stopping.RestoreBest());
        Assert.Equal(stopping.BestLoss, sft.Loss(heldOut), 5);
        Assert.Equal(curve.Min(), stopping.BestLoss);
    }
}
