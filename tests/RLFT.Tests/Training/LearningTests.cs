using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

public class LearningTests(ITestOutputHelper output)
{
    static IEnumerable<List<T>> Batches<T>(List<T> data, int size, int steps)
    {
        for (int s = 0; s < steps; s++) yield return Enumerable.Range(0, size).Select(i => data[(s * size + i) % data.Count]).ToList();
    }

    [Fact]
    public void Sft_halves_the_completion_loss()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var policy = TinyTask.Load();
        output.WriteLine($"init {sw.Elapsed.TotalSeconds:F1}s"); sw.Restart();
        var data = TinyTask.Sft(2000, 1);
        var heldOut = TinyTask.Sft(64, 99);
        using var sft = new SftTrainer(policy, new OptimizerOptions { LearningRate = 2e-3, TotalSteps = 150, WarmupSteps = 10 });
        double before = sft.Loss(heldOut);
        foreach (var b in Batches(data, 32, 150)) sft.Step(b);
        double after = sft.Loss(heldOut);
        output.WriteLine($"train {sw.Elapsed.TotalSeconds:F1}s");
        output.WriteLine($"sft held-out loss {before:F3} -> {after:F3}");
        Assert.True(after <= 0.5 * before, $"loss {before:F3} -> {after:F3}");
    }

    static PolicyModel SftPolicy() => TinyTask.LoadSft();

    [Fact]
    public void Reward_model_reaches_ninety_percent_held_out_accuracy()
    {
        var trunk = TinyTask.Load();
        var rm = new RewardModel(trunk, new RewardHead(trunk.Model.Config.HiddenSize, seed: 1));
        using var trainer = new RewardModelTrainer(rm, new RewardModelOptions(), new OptimizerOptions { LearningRate = 1e-3, TotalSteps = 100, WarmupSteps = 5 });
        foreach (var b in Batches(TinyTask.Prefs(2000, 3), 32, 100)) trainer.Step(b);
        double acc = trainer.Accuracy(TinyTask.Prefs(200, 77));
        output.WriteLine($"reward model held-out accuracy {acc:F3}");
        Assert.True(acc >= 0.9, $"accuracy {acc:F3}");
    }

    [Fact]
    public void Dpo_prefers_chosen_with_a_growing_margin()
    {
        var policy = SftPolicy();
        var reference = new FrozenReference(policy.FrozenCopy());
        using var dpo = new DpoTrainer(policy, reference, new DpoOptions { Beta = 0.1 }, new OptimizerOptions { LearningRate = 1e-3, TotalSteps = 60, Schedule = LrSchedule.Constant });
        var data = TinyTask.Prefs(2000, 5);
        var margins = new List<double>();
        var accs = new List<double>();
        foreach (var b in Batches(data, 32, 60))
        {
            var m = dpo.Step(b);
            margins.Add(m["rewards/margins"]);
            accs.Add(m["rewards/accuracies"]);
        }
        output.WriteLine($"dpo margins {margins.First():F3} -> {margins.TakeLast(5).Average():F3}, accuracy {accs.TakeLast(5).Average():F3}");
        Assert.True(accs.TakeLast(5).Average() >= 0.9);
        Assert.True(margins.TakeLast(5).Average() > margins.Take(5).Average() + 0.5);
    }

    static double TaskReward(string p, string c, string? a) => ReviewTask.Score(p, c, a);

    static List<Experience> Rollouts(PolicyModel policy, List<(string Prompt, string? Answer)> prompts, int group, long seed)
    {
        var expanded = prompts.SelectMany(p => Enumerable.Repeat(p, group)).ToList();
        var (texts, tokens, logps) = Evaluator.Sample(policy, expanded, new GenerationOptions { MaxNewTokens = 12, Temperature = 1.0, Seed = seed });
        return expanded.Select((p, i) => new Experience(policy.EncodePrompt(p.Prompt), tokens[i], logps[i], (float)TaskReward(p.Prompt, texts[i], p.Answer), i / group)).ToList();
    }

    static double HeldOut(PolicyModel policy) =>
        Evaluator.Run(policy, ReviewTask.ReviewPrompts(64, 123).Select(p => (p.Prompt, p.Answer)).ToList(), TaskReward,
            new GenerationOptions { MaxNewTokens = 12, Seed = 7 }).Metrics["eval/reward"];

    [Fact]
    public void Ppo_closes_half_the_gap_to_the_maximum_reward_within_the_kl_target()
    {
        var policy = SftPolicy();
        var frozen = policy.FrozenCopy();
        var value = new ValueHead(policy.Model.Config.HiddenSize, seed: 2);
        var options = new PpoOptions { KlCoef = 0.05, Epochs = 4, MiniBatches = 2 };
        using var ppo = new PpoTrainer(policy, value, new FrozenReference(frozen), options, new OptimizerOptions { LearningRate = 5e-4, TotalSteps = 25, Schedule = LrSchedule.Constant }, seed: 3);
        double start = HeldOut(policy);
        var prompts = ReviewTask.ReviewPrompts(2000, 11).Select(p => (p.Prompt, p.Answer)).ToList();
        double kl = 0;
        for (int step = 0; step < 25; step++)
        {
            var m = ppo.Step(Rollouts(policy, prompts.Skip(step * 32).Take(32).ToList(), 1, 1000 + step));
            kl = m["objective/kl"];
            if (step % 5 == 0) output.WriteLine($"ppo step {step}: reward {m["reward/mean"]:F3} kl {kl:F3} clipfrac {m["policy/clipfrac"]:F3} mismatch {m["rollout/logprob_mismatch"]:F4}");
        }
        double end = HeldOut(policy);
        output.WriteLine($"ppo held-out reward {start:F3} -> {end:F3}, final kl {kl:F3}");
        Assert.True(end - start >= 0.5 * (ReviewTask.MaxReward - start), $"reward {start:F3} -> {end:F3}");
        Assert.True(kl < options.KlTarget, $"kl {kl:F3}");
    }

    [Fact]
    public void Grpo_closes_half_the_gap_to_the_maximum_reward()
    {
        var policy = SftPolicy();
        var frozen = policy.FrozenCopy();
        var options = new GrpoOptions { GroupSize = 8, KlCoef = 0.02 };
        using var grpo = new GrpoTrainer(policy, new FrozenReference(frozen), options, new OptimizerOptions { LearningRate = 5e-4, TotalSteps = 40, Schedule = LrSchedule.Constant });
        double start = HeldOut(policy);
        var prompts = ReviewTask.ReviewPrompts(2000, 12).Select(p => (p.Prompt, p.Answer)).ToList();
        double kl = 0;
        for (int step = 0; step < 40; step++)
        {
            var m = grpo.Step(Rollouts(policy, prompts.Skip(step * 4).Take(4).ToList(), 8, 2000 + step));
            kl = m["objective/kl"];
        }
        double end = HeldOut(policy);
        output.WriteLine($"grpo held-out reward {start:F3} -> {end:F3}, final kl {kl:F3}");
        Assert.True(end - start >= 0.5 * (ReviewTask.MaxReward - start), $"reward {start:F3} -> {end:F3}");
    }

    [Fact]
    public void Distillation_halves_the_teacher_student_kl()
    {
        var teacher = SftPolicy();
        var student = TinyTask.Load();
        using var distill = new DistillTrainer(student, teacher, new DistillOptions(), new OptimizerOptions { LearningRate = 2e-3, TotalSteps = 100 });
        var heldOut = TinyTask.Sft(64, 98);
        double before = distill.Kl(heldOut);
        foreach (var b in Batches(TinyTask.Sft(2000, 2), 32, 100)) distill.Step(b);
        double after = distill.Kl(heldOut);
        output.WriteLine($"distill kl {before:F3} -> {after:F3}");
        Assert.True(after <= 0.5 * before, $"kl {before:F3} -> {after:F3}");
    }
}
