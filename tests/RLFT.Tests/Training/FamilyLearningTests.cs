using Rlft.Policy.Generation;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;

namespace Rlft.Tests.Training;

/// <summary>The built-in task family is learnable by the tiny model the tests use, with its review-task tokenizer.</summary>
public class FamilyLearningTests(ITestOutputHelper output)
{
    static double HeldOutReward(PolicyModel policy, FamilyTask task) =>
        Evaluator.Run(policy, TaskFamily.Prompts(task, 48, 123).Select(p => (p.Prompt, p.Answer)).ToList(),
            (p, c, a) => TaskFamily.Score(p, c, a), new GenerationOptions { MaxNewTokens = 4, Temperature = 0, Seed = 7 }).Metrics["eval/reward"];

    [Fact]
    public void Sft_on_a_mix_of_family_tasks_learns_each_of_them_apart()
    {
        var policy = TinyTask.Load();
        var tasks = new[] { "max", "min", "join" }.Select(TaskFamily.Get).ToList();
        var longest = tasks.SelectMany(t => TaskFamily.Sft(t, 50, 1)).Max(e => policy.Encoder.PromptCompletion(e.Prompt, e.Completion).Ids.Length);
        output.WriteLine($"longest encoded example: {longest} tokens");
        var before = tasks.ToDictionary(t => t.Name, t => HeldOutReward(policy, t));
        var data = TaskFamily.Mixed(tasks, 32 * 300, 1).Select(e => (e.Prompt, e.Completion)).ToList();
        using (var sft = new SftTrainer(policy, new OptimizerOptions { LearningRate = 3e-3, TotalSteps = 300, WarmupSteps = 10 }))
            for (int s = 0; s < 300; s++) sft.Step(data.Skip(s * 32).Take(32).ToList());
        foreach (var task in tasks)
        {
            double after = HeldOutReward(policy, task);
            output.WriteLine($"{task.Name}: held-out reward {before[task.Name]:F3} -> {after:F3}");
            Assert.True(after >= 0.7, $"{task.Name}: held-out reward {before[task.Name]:F3} -> {after:F3}");
        }
    }
}
