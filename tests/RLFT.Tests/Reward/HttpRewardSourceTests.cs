using Rlft.Reward;
using Rlft.Reward.Sources;

namespace Rlft.Tests.Reward;

public class HttpRewardSourceTests
{
    static readonly RewardSample[] Batch = [new("p", "four"), new("p", "bad"), new("p", "err"), new("p", "seven!!"), new("p", "")];

    static HttpRewardSource Source(ScorerServer server, HttpClient http, string path, int retries = 0, int timeoutMs = 10_000, int maxBatch = 64) =>
        new("remote", http, new HttpScorerOptions(server.Url(path), TimeSpan.FromMilliseconds(timeoutMs), retries, TimeSpan.FromMilliseconds(1), maxBatch));

    [Fact]
    public async Task Scores_come_back_per_sample_in_chunks_with_null_and_error_entries_as_failures()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        using var http = new HttpClient();
        var result = await Source(server, http, "score", maxBatch: 2).ScoreAsync(Batch, ct);
        Assert.Equal("remote", result.Source);
        Assert.Equal([4.0, null, null, 7.0, 0.0], result.Scores.Select(s => s.Value));
        Assert.Equal("scorer returned null", result.Scores[1].Failure);
        Assert.Equal("scorer: cannot score", result.Scores[2].Failure);
        Assert.Equal([2, 2, 1], server.BatchSizes);
    }

    [Fact]
    public async Task Transient_errors_are_retried_until_the_scorer_answers()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        using var http = new HttpClient();
        var result = await Source(server, http, "flaky", retries: 2).ScoreAsync(Batch[..1], ct);
        Assert.Equal(4.0, result.Scores[0].Value);
        Assert.Equal(3, server.Requests);
    }

    [Fact]
    public async Task Retries_are_bounded_and_every_sample_reports_the_last_error()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        using var http = new HttpClient();
        var result = await Source(server, http, "down", retries: 2).ScoreAsync(Batch, ct);
        Assert.Equal(3, server.Requests);
        Assert.All(result.Scores, s => Assert.Equal("HTTP 500 (after 3 attempts)", s.Failure));
    }

    [Fact]
    public async Task Client_errors_are_not_retried()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        using var http = new HttpClient();
        var result = await Source(server, http, "teapot", retries: 3).ScoreAsync(Batch[..2], ct);
        Assert.Equal(1, server.Requests);
        Assert.All(result.Scores, s => Assert.StartsWith("HTTP 400", s.Failure));
    }

    [Fact]
    public async Task A_scorer_that_does_not_answer_times_out_on_every_attempt()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        using var http = new HttpClient();
        var result = await Source(server, http, "hang", retries: 1, timeoutMs: 200).ScoreAsync(Batch[..2], ct);
        Assert.Equal(2, server.Requests);
        Assert.All(result.Scores, s => Assert.Equal("timed out after 0.2 s (after 2 attempts)", s.Failure));
    }

    [Fact]
    public async Task A_reply_with_the_wrong_number_of_scores_fails_its_chunk()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        using var http = new HttpClient();
        var result = await Source(server, http, "short").ScoreAsync(Batch[..3], ct);
        Assert.All(result.Scores, s => Assert.Equal("malformed reply: 2 scores for 3 samples", s.Failure));
    }

    [Fact]
    public async Task A_malformed_reply_is_asked_again_like_a_transient_error()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        using var http = new HttpClient();
        var result = await Source(server, http, "garbled", retries: 2).ScoreAsync(Batch[..1], ct);
        Assert.Equal(4.0, result.Scores[0].Value);
        Assert.Equal(3, server.Requests);
        await using var worse = await ScorerServer.StartAsync(ct);
        var failed = await Source(worse, http, "garbled", retries: 1).ScoreAsync(Batch[..2], ct);
        Assert.All(failed.Scores, s => Assert.StartsWith("malformed reply: not JSON", s.Failure));
        Assert.All(failed.Scores, s => Assert.EndsWith("(after 2 attempts)", s.Failure));
    }

    [Fact]
    public async Task NaN_and_infinity_as_Python_writes_them_are_scores_that_are_not_finite()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        using var http = new HttpClient();
        var result = await Source(server, http, "python").ScoreAsync(Batch[..4], ct);
        Assert.Equal(1, server.Requests);
        Assert.Equal(["non-finite score (NaN)", "non-finite score (Infinity)", null, "non-finite score (NaN)"], result.Scores.Select(s => s.Failure));
        Assert.Equal(3.0, result.Scores[2].Value);   // "err"
        // The pipeline drops those samples alone, saying why.
        var pipeline = new Rlft.Reward.Pipeline.RewardPipeline([new(Source(server, http, "python"), new("remote", 1.0))]);
        var scored = await pipeline.ScoreAsync(Batch[..3], ct);
        Assert.Equal([true, true, false], scored.Samples.Select(s => s.Dropped));
        Assert.StartsWith("remote: non-finite score (NaN)", scored.Samples[0].DroppedReason);
        Assert.Equal(3.0, scored.Samples[2].Total);
    }

    [Theory]
    [InlineData("[NaN, 1, -Infinity]", "[\"NaN\", 1, \"-Infinity\"]")]
    [InlineData("{\"scores\": [Infinity], \"why\": \"NaN stays \\\" NaN\"}", "{\"scores\": [\"Infinity\"], \"why\": \"NaN stays \\\" NaN\"}")]
    [InlineData("[1.5, 2]", "[1.5, 2]")]
    public void Bare_non_finite_words_are_quoted_outside_strings_only(string reply, string expected) =>
        Assert.Equal(expected, HttpRewardSource.QuoteNonFiniteLiterals(reply));

    [Fact]
    public async Task An_unreachable_scorer_fails_every_sample_with_the_transport_error()
    {
        var ct = TestContext.Current.CancellationToken;
        Uri url;
        await using (var server = await ScorerServer.StartAsync(ct)) url = server.Url("score");
        using var http = new HttpClient();
        var source = new HttpRewardSource("remote", http, new HttpScorerOptions(url, TimeSpan.FromSeconds(5), 1, TimeSpan.FromMilliseconds(1)));
        var result = await source.ScoreAsync(Batch[..2], ct);
        Assert.All(result.Scores, s => Assert.Contains("(after 2 attempts)", s.Failure));
    }
}
