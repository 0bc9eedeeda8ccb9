using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;

namespace Rlft.Tests.Rollout;

public class TaskFamilyTests
{
    static IEnumerable<(int A, int B)> Grid() =>
        Enumerable.Range(0, TaskFamily.OperandCount).SelectMany(a => Enumerable.Range(0, TaskFamily.OperandCount).Select(b => (a, b)));

    [Fact]
    public void The_family_has_at_least_five_distinct_tasks_of_one_prompt_shape()
    {
        Assert.True(TaskFamily.Tasks.Count >= 5);
        Assert.Equal(TaskFamily.Names.Count, TaskFamily.Names.Distinct().Count());
        Assert.Equal(TaskFamily.Tasks.Count, TaskFamily.Tasks.Select(t => t.Verb).Distinct().Count());
        Assert.All(TaskFamily.Tasks, t => Assert.Matches(@"^\w+ 3 and 8:$", t.Prompt(3, 8)));
    }

    [Fact]
    public void Datasets_are_deterministic_from_the_seed_and_differ_between_seeds_and_tasks()
    {
        foreach (var task in TaskFamily.Tasks)
        {
            Assert.Equal(TaskFamily.Sft(task, 50, 7), TaskFamily.Sft(task, 50, 7));
            Assert.Equal(TaskFamily.Prompts(task, 50, 7), TaskFamily.Prompts(task, 50, 7));
            Assert.Equal(TaskFamily.Preferences(task, 50, 7), TaskFamily.Preferences(task, 50, 7));
            Assert.NotEqual(TaskFamily.Sft(task, 50, 7), TaskFamily.Sft(task, 50, 8));
        }
        // Two tasks drawn with one seed do not walk the same operands.
        var add = TaskFamily.Sft(TaskFamily.Get("add"), 50, 3).Select(e => TaskFamily.Operands(e.Prompt));
        var max = TaskFamily.Sft(TaskFamily.Get("max"), 50, 3).Select(e => TaskFamily.Operands(e.Prompt));
        Assert.NotEqual(add, max);
        Assert.Equal(TaskFamily.Mixed(TaskFamily.Tasks, 80, 2), TaskFamily.Mixed(TaskFamily.Tasks, 80, 2));
    }

    [Theory]
    [InlineData("add 3 and 4:", " 7.", 1.0)]
    [InlineData("add 3 and 4:", " 12.", 0.0)]
    [InlineData("diff 3 and 8:", " 5.", 1.0)]
    [InlineData("diff 8 and 3:", " 5.", 1.0)]
    [InlineData("diff 8 and 3:", " -5.", 0.0)]
    [InlineData("times 7 and 8:", " 56.", 1.0)]
    [InlineData("times 7 and 8:", " 15.", 0.0)]
    [InlineData("max 2 and 9:", " 9.", 1.0)]
    [InlineData("max 2 and 9:", " 2.", 0.0)]
    [InlineData("min 2 and 9:", " 2.", 1.0)]
    [InlineData("join 2 and 9:", " 29.", 1.0)]
    [InlineData("join 2 and 9:", " 2 then 29.", 1.0)]           // the last number of the first sentence answers
    [InlineData("join 2 and 9:", " 2 9.", 0.0)]                 // … and 9 is not 29
    [InlineData("join 2 and 9:", " 92.", 0.0)]
    [InlineData("min 2 and 9:", " 2", 1.0)]                     // cut short after the answer
    [InlineData("min 2 and 9:", " 9. 2.", 0.0)]                 // only the first sentence counts
    [InlineData("min 2 and 9:", " two.", 0.0)]
    [InlineData("min 2 and 9:", "", 0.0)]
    [InlineData("review the movie:", " 2.", 0.0)]               // not a family prompt, no answer given
    [InlineData("mod 2 and 9:", " 2.", 0.0)]                    // no such task
    public void The_reward_scores_the_answer_by_the_prompts_operation(string prompt, string completion, double expected) =>
        Assert.Equal(expected, TaskFamily.Score(prompt, completion));

    [Fact]
    public void A_given_answer_wins_over_the_prompt_and_rewards_stay_in_the_unit_interval()
    {
        Assert.Equal(1.0, TaskFamily.Score("add 3 and 4:", " 8.", answer: "8"));
        Assert.Equal(0.0, TaskFamily.Score("add 3 and 4:", " 7.", answer: "8"));
        foreach (var task in TaskFamily.Tasks)
            foreach (var p in TaskFamily.Prompts(task, 40, 1))
                Assert.InRange(TaskFamily.Score(p.Prompt, " " + p.Answer + ".", p.Answer), 0, TaskFamily.MaxReward);
    }

    [Fact]
    public void Every_dataset_carries_right_answers_and_preferences_reject_a_wrong_one()
    {
        foreach (var task in TaskFamily.Tasks)
        {
            Assert.All(TaskFamily.Sft(task, 200, 4), e => Assert.Equal(1.0, TaskFamily.Score(e.Prompt, e.Completion)));
            Assert.All(TaskFamily.Prompts(task, 200, 4), p => Assert.Equal(TaskFamily.ExpectedAnswer(p.Prompt), p.Answer));
            Assert.All(TaskFamily.Preferences(task, 200, 4), p =>
            {
                Assert.Equal(1.0, TaskFamily.Score(p.Prompt, p.Chosen));
                Assert.Equal(0.0, TaskFamily.Score(p.Prompt, p.Rejected));
            });
        }
    }

    [Fact]
    public void Preferences_reject_what_another_task_of_the_family_would_answer()
    {
        // The rejected answer is another task's answer for the same operands; only where every task agrees (0 and 0)
        // is it the right answer plus one.
        foreach (var p in TaskFamily.Preferences(TaskFamily.Get("max"), 300, 9))
        {
            var (a, b) = TaskFamily.Operands(p.Prompt)!.Value;
            var others = TaskFamily.Tasks.Where(t => t.Name != "max").ToList();
            if (others.All(t => t.Apply(a, b) == Math.Max(a, b))) Assert.Equal($" {Math.Max(a, b) + 1}.", p.Rejected);
            else Assert.Contains(others, t => t.Completion(a, b) == p.Rejected);
        }
    }

    [Fact]
    public void The_tasks_really_differ_the_right_answer_of_one_scores_low_on_every_other()
    {
        // Over every operand pair, a task's right answer is also right for another task on at most a fifth of them
        // (max and add agree when the smaller operand is 0; times and min when one is 0 or both are 1; …).
        foreach (var a in TaskFamily.Tasks)
            foreach (var b in TaskFamily.Tasks.Where(t => t != a))
            {
                double own = Grid().Average(p => TaskFamily.ScoreAs(a, a.Prompt(p.A, p.B), a.Completion(p.A, p.B)));
                double other = Grid().Average(p => TaskFamily.ScoreAs(b, b.Prompt(p.A, p.B), a.Completion(p.A, p.B)));
                Assert.Equal(1.0, own);
                Assert.True(other <= 0.2, $"{a.Name}'s answers score {other:F2} on {b.Name}");
            }
    }

    [Fact]
    public void The_built_in_task_reward_scores_family_prompts_by_the_familys_rule_and_reviews_as_before()
    {
        // Stages on builtin: data are scored with ReviewTask.Score: family prompts get the family's reward there.
        foreach (var task in TaskFamily.Tasks)
            foreach (var p in TaskFamily.Prompts(task, 30, 6))
                foreach (var completion in new[] { " " + p.Answer + ".", " 100.", " the movie was great." })
                {
                    Assert.Equal(TaskFamily.Score(p.Prompt, completion), ReviewTask.Score(p.Prompt, completion));
                    Assert.Equal(TaskFamily.Score(p.Prompt, completion, p.Answer), ReviewTask.Score(p.Prompt, completion, p.Answer));
                }
        Assert.Equal(1.0, ReviewTask.Score("review the movie:", " the movie was great."));
        Assert.Equal(0.5, ReviewTask.Score("review the max:", " the max was great and dull."));    // "review" is no family verb
    }

    [Fact]
    public void Builtin_family_names_resolve_to_written_task_datasets()
    {
        string run = Directory.CreateTempSubdirectory("rlft-family").FullName;
        try
        {
            string sft = DataResolver.Resolve("builtin:family/max", run, seed: 5, "k");
            Assert.Equal(TaskFamily.Sft(TaskFamily.Get("max"), 2000, 5), Jsonl.ReadSft(sft));
            Assert.Equal(Jsonl.ReadSft(sft), Jsonl.ReadSft(DataResolver.Resolve("builtin:family/max/sft", run, 5, "k")));
            Assert.Equal(TaskFamily.Prompts(TaskFamily.Get("max"), 64, 5 + 3), Jsonl.ReadPrompts(DataResolver.Resolve("builtin:family/max/eval-prompts", run, 5, "k")));
            Assert.Equal(TaskFamily.Preferences(TaskFamily.Get("times"), 1000, 5 + 4), Jsonl.ReadPreferences(DataResolver.Resolve("builtin:family/times/preferences", run, 5, "k")));
            Assert.Empty(DatasetFormats.Check(DataResolver.Resolve("builtin:family/min/eval-sft", run, 5, "k"), DataKind.Sft));
            Assert.Empty(Directory.GetFiles(run, "*.tmp", SearchOption.AllDirectories));
            Assert.Equal(TaskFamily.Tasks.Count * (TaskFamily.Parts.Length + 1), TaskFamily.DatasetNames().Count());
            Assert.All(TaskFamily.DatasetNames(), n => Assert.Null(DataResolver.BuiltinProblem(n)));
        }
        finally { Directory.Delete(run, true); }
    }

    [Theory]
    [InlineData("builtin:family/mod", "rlft.job.stages[1].data: unknown task 'mod' in builtin:family/mod (the family's tasks: add, diff, times, max, min, join)")]
    [InlineData("builtin:family/add/answers", "rlft.job.stages[1].data: unknown dataset 'answers' of family task 'add'")]
    [InlineData("builtin:family/", "rlft.job.stages[1].data: unknown task ''")]
    [InlineData("builtin:families", "rlft.job.stages[1].data: unknown built-in dataset 'families'")]
    public void Unknown_family_tasks_and_parts_are_refused_with_the_key_path(string data, string expected)
    {
        string run = Directory.CreateTempSubdirectory("rlft-family").FullName;
        try
        {
            var e = Assert.Throws<ConfigException>(() => DataResolver.Resolve(data, run, 1, "rlft.job.stages[1].data"));
            Assert.StartsWith(expected, e.Message);
            Assert.False(Directory.Exists(Path.Combine(run, "data")));
        }
        finally { Directory.Delete(run, true); }
    }
}
