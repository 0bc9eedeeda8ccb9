using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;

namespace Rlft.Tests.Rollout;

public class BuiltinTaskTests
{
    [Fact]
    public void Worked_sums_name_the_right_operation_about_half_the_time_and_always_state_its_result()
    {
        var sums = ReviewTask.WorkedSums(2000, 5);
        double right = sums.Count(e => e.Completion.Contains(" plus ")) / (double)sums.Count;
        Assert.InRange(right, 0.45, 0.55);
        Assert.All(sums.Where(e => e.Completion.Contains(" plus ")), e => Assert.Equal(1.0, ReviewTask.Score(e.Prompt, e.Completion)));
        Assert.All(sums.Where(e => e.Completion.Contains(" times ")), e => Assert.Matches(@"^ (\d) times (\d) is \d+\.$", e.Completion));
    }

    [Fact]
    public void Datasets_are_deterministic_from_the_seed()
    {
        Assert.Equal(ReviewTask.SftCorpus(50, 7), ReviewTask.SftCorpus(50, 7));
        Assert.NotEqual(ReviewTask.SftCorpus(50, 7), ReviewTask.SftCorpus(50, 8));
        Assert.Equal(ReviewTask.Preferences(20, 1), ReviewTask.Preferences(20, 1));
    }

    [Theory]
    [InlineData("review the movie:", " the movie was great and fun.", 1.0)]
    [InlineData("review the movie:", " the movie was great and dull.", 0.5)]
    [InlineData("review the movie:", " the movie was bad and dull.", 0.0)]
    [InlineData("review the movie:", " the movie was great and fun", 0.0)]       // no period: malformed
    [InlineData("review the movie:", " the movie was.", 0.0)]                    // no sentiment at all
    [InlineData("review the movie:", " great. bad bad bad", 1.0)]                // only the first sentence counts
    [InlineData("add 3 and 4:", " 7.", 1.0)]
    [InlineData("add 3 and 4:", " 8.", 0.0)]
    [InlineData("add 3 and 4:", "17.", 0.0)]
    [InlineData("add 3 and 4:", " 3 plus 4 is 7.", 1.0)]                       // worked: the final number answers
    [InlineData("add 3 and 4:", " 3 times 4 is 12.", 0.0)]
    [InlineData("add 3 and 4:", " 3 plus 4 is 7", 1.0)]                        // cut short after the answer
    [InlineData("add 3 and 4:", " 7. then 8.", 1.0)]                           // only the first sentence counts
    [InlineData("add 3 and 4:", " seven.", 0.0)]
    public void The_task_reward_scores_by_its_rule(string prompt, string completion, double expected) =>
        Assert.Equal(expected, ReviewTask.Score(prompt, completion));

    [Fact]
    public void The_sft_policy_sits_near_half_of_the_maximum_reward()
    {
        var reviews = ReviewTask.SftCorpus(2000, 3, sumFraction: 0).Select(e => ReviewTask.Score(e.Prompt, e.Completion)).ToList();
        Assert.InRange(reviews.Average(), 0.4, 0.6);
        Assert.Equal(ReviewTask.MaxReward, reviews.Max());
    }

    [Fact]
    public void Preference_pairs_prefer_the_higher_scoring_review()
    {
        foreach (var p in ReviewTask.Preferences(200, 5))
            Assert.True(ReviewTask.Score(p.Prompt, p.Chosen) > ReviewTask.Score(p.Prompt, p.Rejected));
    }

    [Fact]
    public void Sums_carry_correct_verifiable_answers()
    {
        foreach (var p in ReviewTask.SumPrompts(100, 2))
        {
            var parts = p.Prompt.TrimEnd(':').Split(' ');
            Assert.Equal((int.Parse(parts[1]) + int.Parse(parts[3])).ToString(), p.Answer);
            Assert.Equal(1.0, ReviewTask.Score(p.Prompt, " " + p.Answer + ".", p.Answer));
        }
    }

    [Fact]
    public void Datasets_round_trip_through_jsonl()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-task").FullName;
        var paths = ReviewTask.WriteDatasets(dir, seed: 11);
        Assert.Equal(ReviewTask.SftCorpus(2000, 11), Jsonl.ReadSft(paths["sft"]));
        Assert.Equal(ReviewTask.Preferences(1000, 14), Jsonl.ReadPreferences(paths["preferences"]));
        Assert.Equal(ReviewTask.SumPrompts(512, 15), Jsonl.ReadPrompts(paths["sums"]));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Malformed_dataset_lines_are_named_by_file_and_line()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-task").FullName;
        string path = Path.Combine(dir, "bad.jsonl");
        File.WriteAllLines(path, ["{\"prompt\": \"a\", \"completion\": \"b\"}", "", "{\"prompt\": 3}"]);
        Assert.StartsWith($"{path}:3: field \"prompt\": expected a string, got a number", Assert.Throws<DatasetException>(() => Jsonl.ReadSft(path)).Message);
        File.WriteAllLines(path, ["{\"prompt\": \"a\"", "x"]);
        Assert.StartsWith($"{path}:1: invalid JSON", Assert.Throws<DatasetException>(() => Jsonl.ReadPrompts(path)).Message);
        File.WriteAllLines(path, ["{\"prompt\": \"a\", \"chosen\": \"b\"}"]);
        Assert.Contains(":1: missing string field \"rejected\"", Assert.Throws<DatasetException>(() => Jsonl.ReadPreferences(path)).Message);
        Assert.StartsWith("dataset not found", Assert.Throws<DatasetException>(() => Jsonl.ReadSft(Path.Combine(dir, "none.jsonl"))).Message);
        Directory.Delete(dir, true);
    }
}
