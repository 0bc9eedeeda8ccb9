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
        Assert.All(result.Scores, s => Assert.Equal("reply has 2 scores for 3 samples", s.Failure));
    }

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
