using System.Net;
using System.Text;
using System.Text.Json;

namespace Rlft.Tests.Feedback;

public class FeedbackHttpTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Compare_and_score_ratings_flow_into_stats_and_export()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([
            FeedbackTestNode.Compare("c1", "Say hi", "hello", "hello hello", raters: 2),
            FeedbackTestNode.Score("s1", "Count", "one two", raters: 2),
        ], Ct);

        foreach (var rater in new[] { "alice", "bob" })
        {
            var client = node.Client(rater);
            var compare = await client.NextAsync(Ct);
            Assert.Equal(("c1", "compare", "Say hi"), (compare!.TaskId, compare.Kind, compare.Prompt));
            Assert.Equal(HttpStatusCode.Created, (await client.RateAsync("c1", "b", null, Ct)).Status);
            var score = await client.NextAsync(Ct);
            Assert.Equal("s1", score!.TaskId);
            Assert.Equal(HttpStatusCode.Created, (await client.RateAsync("s1", null, new Dictionary<string, int> { ["a"] = rater == "alice" ? 6 : 5 }, Ct)).Status);
            Assert.Null(await client.NextAsync(Ct));
        }

        using var stats = JsonDocument.Parse(await node.Admin.GetTextAsync("/api/v1/stats", Ct));
        var s = stats.RootElement;
        Assert.Equal(0, s.GetProperty("pending").GetInt32());
        Assert.Equal(2, s.GetProperty("rated").GetInt32());
        Assert.Equal(4, s.GetProperty("ratings").GetInt32());
        Assert.Equal(2, s.GetProperty("raters").GetProperty("alice").GetInt32());
        Assert.Equal(2, s.GetProperty("raters").GetProperty("bob").GetInt32());
        // Both raters picked b: perfect agreement. Scores 6 and 5 on the only unit: all variation is disagreement.
        Assert.Equal(1.0, s.GetProperty("agreement").GetProperty("compare").GetDouble());
        Assert.Equal(0.0, s.GetProperty("agreement").GetProperty("score").GetDouble(), 9);

        var prefs = (await node.Admin.GetTextAsync("/api/v1/export?format=preferences", Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, prefs.Length);
        using var p = JsonDocument.Parse(prefs[0]);
        // The contract's keys first, then what else the rater said.
        Assert.Equal(["prompt", "chosen", "rejected", "rater", "time", "taskId", "answer", "label", "weight"], p.RootElement.EnumerateObject().Select(x => x.Name));
        Assert.Equal(("Say hi", "hello hello", "hello"), (p.RootElement.GetProperty("prompt").GetString(), p.RootElement.GetProperty("chosen").GetString(), p.RootElement.GetProperty("rejected").GetString()));
        Assert.True(DateTimeOffset.TryParse(p.RootElement.GetProperty("time").GetString(), out _));

        var c1 = (await node.Admin.GetTextAsync("/api/v1/admin/ratings?items=c1", Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, c1.Length);
        Assert.All(c1, l => Assert.Contains("\"taskId\":\"c1\"", l));

        var scores = (await node.Admin.GetTextAsync("/api/v1/export?format=scores", Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, scores.Length);
        using var sc = JsonDocument.Parse(scores[0]);
        Assert.Equal(["prompt", "completion", "score", "rater", "time", "taskId", "completionId"], sc.RootElement.EnumerateObject().Select(x => x.Name));
        Assert.Equal(("one two", 6, "alice"), (sc.RootElement.GetProperty("completion").GetString(), sc.RootElement.GetProperty("score").GetInt32(), sc.RootElement.GetProperty("rater").GetString()));
    }

    [Fact]
    public async Task Identical_resubmission_returns_the_original_answer_and_a_different_one_conflicts()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y")], Ct);
        var alice = node.Client("alice");
        await alice.NextAsync(Ct);
        var first = await alice.RateAsync("c1", "a", null, Ct);
        var again = await alice.RateAsync("c1", "a", null, Ct);
        var other = await alice.RateAsync("c1", "b", null, Ct);
        Assert.Equal(HttpStatusCode.Created, first.Status);
        Assert.Equal((HttpStatusCode.Created, first.RatingId), (again.Status, again.RatingId));
        Assert.Equal(HttpStatusCode.Conflict, other.Status);
        Assert.Contains("different answer", other.Error);
        Assert.Single(await node.RatingsAsync());
    }

    [Fact]
    public async Task An_item_goes_to_no_more_raters_than_it_needs_and_a_rater_keeps_their_lease()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y", raters: 1)], Ct);
        var first = await node.Client("alice").NextAsync(Ct);
        Assert.Equal("c1", first!.TaskId);
        Assert.Null(await node.Client("bob").NextAsync(Ct));
        Assert.Equal("c1", (await node.Client("alice").NextAsync(Ct))!.TaskId);
        Assert.Equal(HttpStatusCode.Forbidden, (await node.Client("bob").RateAsync("c1", "a", null, Ct)).Status);
    }

    [Fact]
    public async Task Per_rater_rate_limit_answers_429()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with { RatePerSecond = 1, RateBurst = 3 });
        var statuses = new List<HttpStatusCode>();
        for (int i = 0; i < 10; i++)
        {
            using var r = await node.Http.SendAsync(node.Request(HttpMethod.Get, "/api/v1/tasks/next", node.Tokens["alice"]), Ct);
            statuses.Add(r.StatusCode);
        }
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        // Another rater has their own bucket.
        using var bob = await node.Http.SendAsync(node.Request(HttpMethod.Get, "/api/v1/tasks/next", node.Tokens["bob"]), Ct);
        Assert.Equal(HttpStatusCode.NoContent, bob.StatusCode);
    }

    [Fact]
    public async Task Html_in_texts_is_returned_as_json_text_and_the_page_forbids_inline_injection()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        const string evil = "<script>window.pwned=1</script><img src=x onerror=alert(1)>";
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", evil, evil, "ok")], Ct);
        using var next = await node.Http.SendAsync(node.Request(HttpMethod.Get, "/api/v1/tasks/next", node.Tokens["alice"]), Ct);
        Assert.Equal("application/json", next.Content.Headers.ContentType!.MediaType);
        string raw = await next.Content.ReadAsStringAsync(Ct);
        Assert.DoesNotContain("<script>", raw);
        using var doc = JsonDocument.Parse(raw);
        Assert.Equal(evil, doc.RootElement.GetProperty("prompt").GetString());
        using var page = await node.Http.GetAsync("/", Ct);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        string csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'sha256-", csp);
        Assert.DoesNotContain("unsafe-inline' ;", csp.Split("style-src")[0]);
    }

    [Fact]
    public async Task Healthz_answers_without_a_token()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        using var r = await node.Http.GetAsync("/healthz", Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Contains("ok", await r.Content.ReadAsStringAsync(Ct));
    }
}
