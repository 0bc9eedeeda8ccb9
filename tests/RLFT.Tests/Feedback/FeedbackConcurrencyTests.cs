using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>Ratings posted concurrently over HTTP: one rating per (rater, task), whatever the interleaving.</summary>
public class FeedbackConcurrencyTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_same_rating_posted_concurrently_is_stored_once_and_every_post_gets_the_same_201_body()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y"), FeedbackTestNode.Score("s1", "q", "z")], Ct);
        var alice = node.Client("alice");
        Assert.Equal("c1", (await alice.NextAsync(Ct))!.TaskId);
        var compare = await PostAllAsync(node, Enumerable.Repeat("""{"taskId":"c1","choice":"b"}""", 32));
        Assert.All(compare, r => Assert.Equal(HttpStatusCode.Created, r.Status));
        Assert.Single(compare.Select(r => r.Body).Distinct());

        Assert.Equal("s1", (await alice.NextAsync(Ct))!.TaskId);
        var score = await PostAllAsync(node, Enumerable.Repeat("""{"taskId":"s1","scores":{"a":6}}""", 32));
        Assert.All(score, r => Assert.Equal(HttpStatusCode.Created, r.Status));
        Assert.Single(score.Select(r => r.Body).Distinct());

        var stored = await node.RatingsAsync();
        Assert.Equal(2, stored.Length);
        Assert.Contains(RatingId(compare[0].Body), stored[0]);
        Assert.Contains(RatingId(score[0].Body), stored[1]);
    }

    [Fact]
    public async Task Two_different_answers_racing_give_one_201_and_one_409_and_the_stored_rating_is_the_winner()
    {
        var log = new CapturedLog();
        await using var node = await FeedbackTestNode.StartAsync(logging: l => l.AddProvider(log).SetMinimumLevel(LogLevel.Warning));
        const int Items = 4;
        await node.Admin.EnqueueAsync(Enumerable.Range(0, Items).Select(i => FeedbackTestNode.Compare($"c{i}", "p", $"x{i}", $"y{i}")), Ct);
        var alice = node.Client("alice");
        for (int i = 0; i < Items; i++)
        {
            Assert.Equal($"c{i}", (await alice.NextAsync(Ct))!.TaskId);
            // Eight posts of each answer, interleaved, all in flight together.
            var bodies = Enumerable.Range(0, 16).Select(k => $$"""{"taskId":"c{{i}}","choice":"{{(k % 2 == 0 ? "a" : "b")}}"}""").ToList();
            var results = await PostAllAsync(node, bodies);
            var stored = (await node.Admin.GetTextAsync($"/api/v1/admin/ratings?items=c{i}", Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            using var rating = JsonDocument.Parse(Assert.Single(stored));
            string winner = rating.RootElement.GetProperty("choice").GetString()!;
            string ratingId = rating.RootElement.GetProperty("ratingId").GetString()!;
            for (int k = 0; k < bodies.Count; k++)
            {
                bool same = bodies[k].Contains($"\"{winner}\"", StringComparison.Ordinal);
                Assert.True(results[k].Status < HttpStatusCode.InternalServerError,
                    $"{results[k].Status} {results[k].Body}; logged: {string.Join(" | ", log.Entries.Select(e => $"{e.Category} {e.Message} {e.Exception}"))}");
                Assert.Equal(same ? HttpStatusCode.Created : HttpStatusCode.Conflict, results[k].Status);
                if (same) Assert.Equal(ratingId, RatingId(results[k].Body));
                else Assert.Contains("different answer", results[k].Body);
            }
        }
        Assert.Equal(Items, (await node.RatingsAsync()).Length);
    }

    [Fact]
    public void Refusals_are_written_with_json_options_that_are_read_only_before_their_first_use()
    {
        // ASP.NET Core's JsonHttpResult assigns a type-info resolver to options that are not read-only yet; with one
        // shared instance, two refusals answered at once could race that assignment against the other's serialization
        // (InvalidOperationException: a 500 where a 409 was due). Options locked when made are never assigned to.
        Assert.True(FeedbackJson.Create().IsReadOnly);
        var refusal = Rlft.Actors.Feedback.Http.FeedbackEndpoints.Error(409, "already rated");
        var options = refusal.GetType().GetProperty("JsonSerializerOptions")!.GetValue(refusal);
        Assert.Same(FeedbackJson.Web, options);
    }

    static async Task<(HttpStatusCode Status, string Body)[]> PostAllAsync(FeedbackTestNode node, IEnumerable<string> bodies)
    {
        using var start = new SemaphoreSlim(0);
        var posts = bodies.Select(async body =>
        {
            await start.WaitAsync(Ct);
            using var request = node.Request(HttpMethod.Post, "/api/v1/ratings", node.Tokens["alice"], body);
            using var response = await node.Http.SendAsync(request, Ct);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
        }).ToArray();
        start.Release(posts.Length);
        return await Task.WhenAll(posts);
    }

    static string RatingId(string body)
    {
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("ratingId").GetString()!;
    }
}
