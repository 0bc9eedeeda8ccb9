using Rlft.Reward;
using Rlft.Reward.Ratings;
using Rlft.Reward.Sources;

namespace Rlft.Tests.Reward;

public class RuleRewardTests
{
    static async Task<SampleScore> One(IRewardSource source, string completion, string? reference = null) =>
        (await source.ScoreAsync([new RewardSample("q", completion, reference)], TestContext.Current.CancellationToken)).Scores[0];

    [Fact]
    public async Task Exact_match_extracts_the_last_answer_and_needs_a_reference()
    {
        var source = RuleRewards.ExactMatch(extract: @"Answer:\s*(.+)");
        Assert.Equal(1, (await One(source, "Answer: no\nAnswer:  The  Cat 1,000", "the cat 1000.0")).Value);
        Assert.Equal(0, (await One(source, "the cat 1000", "the cat 1000")).Value);
        Assert.Equal("no reference answer", (await One(source, "Answer: x")).Failure);
        Assert.Equal(0, (await One(RuleRewards.ExactMatch(caseSensitive: true), "Cat", "cat")).Value);
    }

    [Theory]
    [InlineData("The total is 1,000.", "1000", 1)]
    [InlineData("it is +3", "3.0", 1)]
    [InlineData("first 5 then -2.50", "-2.5", 1)]
    [InlineData("about 1000.1", "1000", 0)]
    [InlineData("no number here", "7", 0)]
    public async Task Numeric_match_compares_the_last_number(string completion, string reference, double expected) =>
        Assert.Equal(expected, (await One(RuleRewards.NumericMatch(), completion, reference)).Value);

    [Fact]
    public async Task Numeric_match_refuses_a_reference_that_is_not_a_number() =>
        Assert.Equal("reference 'seven' is not a number", (await One(RuleRewards.NumericMatch(), "7", "seven")).Failure);

    [Fact]
    public async Task Length_regex_json_sections_and_repetition_score_as_documented()
    {
        Assert.Equal(1, (await One(RuleRewards.TargetLength(4), "one two three four")).Value);
        Assert.Equal(0.5, (await One(RuleRewards.TargetLength(4), "one two")).Value);
        Assert.Equal(0, (await One(RuleRewards.TargetLength(2, LengthUnit.Characters), "abcdef")).Value);
        Assert.Equal(2, (await One(RuleRewards.Regex(@"\bplease\b", matchScore: 2, missScore: -1), "yes please")).Value);
        Assert.Equal(-1, (await One(RuleRewards.Regex(@"\bplease\b", matchScore: 2, missScore: -1), "pleased")).Value);
        var json = RuleRewards.ValidJson(["answer", "reason"]);
        Assert.Equal(1, (await One(json, "```json\n{\"answer\": 1, \"reason\": \"x\"}\n```")).Value);
        Assert.Equal(0.5, (await One(json, "{\"answer\": 1}")).Value);
        Assert.Equal(0, (await One(json, "{\"answer\": 1")).Value);
        Assert.Equal(1, (await One(RuleRewards.ValidJson(), "[1, 2]")).Value);
        var sections = RuleRewards.Sections(["Reasoning:", "Answer:"]);
        Assert.Equal(1, (await One(sections, "reasoning: because\nANSWER: 4")).Value);
        Assert.Equal(0.5, (await One(sections, "Answer: 4\nReasoning: because")).Value);
        Assert.Equal(1, (await One(RuleRewards.Sections(["Reasoning:", "Answer:"], inOrder: false), "Answer: 4\nReasoning: because")).Value);
        // "a b a b": bigrams ab, ba, ab → 2 distinct of 3.
        Assert.Equal(-1 / 3.0, (await One(RuleRewards.RepetitionPenalty(2), "a b a b")).Value!.Value, 12);
        Assert.Equal(0, (await One(RuleRewards.RepetitionPenalty(3), "a b")).Value);
    }

    [Fact]
    public async Task Registered_functions_score_and_their_exceptions_fail_only_their_sample()
    {
        var registry = new RewardFunctionRegistry().Register("shout", s => s.Completion.Count(char.IsUpper) / (double)s.Completion.Length);
        Assert.True(registry.TryGet("shout", out var shout));
        var source = RuleRewards.Function("shout", shout);
        var result = await source.ScoreAsync([new("q", "ABcd"), new("q", "")], TestContext.Current.CancellationToken);
        Assert.Equal(0.5, result.Scores[0].Value);
        Assert.Equal("non-finite score (NaN)", result.Scores[1].Failure);
        Assert.Throws<ArgumentException>(() => registry.Register("shout", _ => 0));
        var builtIn = RewardFunctionRegistry.WithBuiltIns();
        Assert.Equal(["char-count", "contains-reference", "word-count"], builtIn.Names);
        builtIn.TryGet("contains-reference", out var contains);
        var r = await RuleRewards.Function("c", contains).ScoreAsync([new("q", "It is 1,000 apples", "1000 APPLES"), new("q", "x")], TestContext.Current.CancellationToken);
        Assert.Equal(1, r.Scores[0].Value);
        Assert.Equal("no reference answer", r.Scores[1].Failure);
    }

    [Fact]
    public async Task Asynchronous_functions_are_awaited_in_batch_order_through_the_pipeline_factory_and_fail_only_their_sample()
    {
        var order = new List<string>();
        var registry = new RewardFunctionRegistry().Register("slow-length", async (s, ct) =>
        {
            await Task.Delay(5, ct);
            lock (order) order.Add(s.Completion);
            return s.Completion.Length == 0 ? throw new InvalidOperationException("empty completion") : s.Completion.Length;
        });
        Assert.Equal(["slow-length"], registry.Names);
        Assert.Throws<ArgumentException>(() => registry.Register("slow-length", _ => 0));
        var source = RewardPipelineFactory.CreateSource("len", new FunctionSpec("slow-length"), new RewardEnvironment { Functions = registry });
        var result = await source.ScoreAsync([new("q", "abc"), new("q", ""), new("q", "de")], TestContext.Current.CancellationToken);
        Assert.Equal(3, result.Scores[0].Value);
        Assert.Equal("empty completion", result.Scores[1].Failure);
        Assert.Equal(2, result.Scores[2].Value);
        Assert.Equal(["abc", "", "de"], order);
    }

    [Fact]
    public void Invalid_patterns_and_lengths_are_refused_when_the_source_is_built()
    {
        Assert.Contains("invalid regular expression '('", Assert.Throws<ArgumentException>(() => RuleRewards.Regex("(")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => RuleRewards.TargetLength(0));
        Assert.Throws<ArgumentException>(() => RuleRewards.Sections([]));
    }
}

public class RewardModelSourceTests
{
    /// <summary>A scorer standing in for the reward-model head: the completion's length, NaN for "nan", throws for "boom".</summary>
    sealed class LengthScorer : ISequenceScorer
    {
        public List<int> Calls { get; } = [];
        public Task<float[]> ScoreAsync(IReadOnlyList<(string Prompt, string Completion)> batch, CancellationToken ct)
        {
            Calls.Add(batch.Count);
            if (batch.Any(b => b.Completion == "boom")) throw new InvalidOperationException("out of memory");
            return Task.FromResult(batch.Select(b => b.Completion == "nan" ? float.NaN : b.Completion.Length).ToArray());
        }
    }

    [Fact]
    public async Task Batches_go_to_the_model_in_chunks_and_bad_outputs_fail_only_their_samples()
    {
        var scorer = new LengthScorer();
        var source = new RewardModelSource("rm", scorer, maxBatch: 3);
        string[] completions = ["a", "bb", "nan", "dddd", "boom", "f", "ggggggg"];
        var result = await source.ScoreAsync(completions.Select(c => new RewardSample("p", c)).ToList(), TestContext.Current.CancellationToken);
        Assert.Equal([3, 3, 1], scorer.Calls);
        Assert.Equal([1.0, 2.0, null, null, null, null, 7.0], result.Scores.Select(s => s.Value));
        Assert.Equal("non-finite score (NaN)", result.Scores[2].Failure);
        Assert.Equal("reward model failed: out of memory", result.Scores[4].Failure);
    }
}

public class HumanRatingSourceTests
{
    [Fact]
    public async Task Ratings_from_distinct_raters_are_aggregated_once_enough_arrive()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = new InMemoryHumanRatingPort();
        var source = new HumanRatingSource("human", port, new HumanRatingOptions(MinRaters: 2, Timeout: TimeSpan.FromMinutes(5), ScoreAggregate.Median));
        var scoring = source.ScoreAsync([new("p", "first"), new("p", "second")], ct);
        var items = await port.WaitForPendingAsync(2, ct);
        Assert.Equal(["first", "second"], items.Select(i => i.Completion));
        port.Rate(items[0].ItemId, "ann", 7);
        port.Rate(items[0].ItemId, "ann", 1); // a repeat by the same rater: one vote (the mean of hers, 4)
        port.Rate(items[1].ItemId, "ann", 2);
        Assert.False(scoring.IsCompleted);
        port.Rate(items[0].ItemId, "bob", 6);
        port.Rate(items[1].ItemId, "bob", 3);
        var result = await scoring;
        Assert.Equal([5.0, 2.5], result.Scores.Select(s => s.Value));
    }

    [Fact]
    public async Task Items_without_enough_raters_when_the_wait_ends_fail_with_a_timeout()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = new InMemoryHumanRatingPort();
        var source = new HumanRatingSource("human", port, new HumanRatingOptions(MinRaters: 2, Timeout: TimeSpan.FromMilliseconds(200)));
        var scoring = source.ScoreAsync([new("p", "only")], ct);
        var items = await port.WaitForPendingAsync(1, ct);
        port.Rate(items[0].ItemId, "ann", 5);
        var result = await scoring;
        Assert.Equal("timed out with 1 of 2 ratings", result.Scores[0].Failure);
    }
}
