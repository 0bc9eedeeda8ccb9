using System.Net;
using System.Text.Json;

namespace Rlft.Tests.Feedback;

/// <summary>What each token may read: raters see aggregates and their own count; export and the rating list are the admin's.</summary>
public class FeedbackAccessTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_rater_sees_aggregates_and_only_their_own_count_and_the_admin_sees_every_rater()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y", raters: 2), FeedbackTestNode.Compare("c2", "p", "u", "v", raters: 1)], Ct);
        foreach (var (rater, ratings) in new[] { ("alice", 2), ("bob", 1) })
            for (int i = 0; i < ratings; i++)
            {
                var task = await node.Client(rater).NextAsync(Ct);
                Assert.Equal(HttpStatusCode.Created, (await node.Client(rater).RateAsync(task!.TaskId, "a", null, Ct)).Status);
            }

        string[] keys = ["pending", "rated", "timedOut", "ratings", "activeRaters", "raters", "agreement"];
        using var admin = JsonDocument.Parse(await node.Admin.GetTextAsync("/api/v1/stats", Ct));
        Assert.Equal(keys, admin.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["alice:2", "bob:1"], Counts(admin));
        Assert.Equal((0, 2, 3, 2), Aggregates(admin));

        foreach (var (rater, expected) in new[] { ("alice", "alice:2"), ("bob", "bob:1"), ("dave", "dave:0") })
        {
            string text = await node.Client(rater).GetTextAsync("/api/v1/stats", Ct);
            using var mine = JsonDocument.Parse(text);
            Assert.Equal(keys, mine.RootElement.EnumerateObject().Select(p => p.Name));
            Assert.Equal([expected], Counts(mine));
            Assert.Equal(Aggregates(admin), Aggregates(mine));
            Assert.Equal(admin.RootElement.GetProperty("agreement").GetRawText(), mine.RootElement.GetProperty("agreement").GetRawText());
            foreach (var other in FeedbackTestNode.RaterNames.Where(n => n != rater)) Assert.DoesNotContain(other, text);
        }
    }

    [Fact]
    public async Task Export_is_the_admins_and_a_raters_attempt_reveals_nothing()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "a secret prompt", "x", "y")], Ct);
        await node.Client("bob").NextAsync(Ct);
        Assert.Equal(HttpStatusCode.Created, (await node.Client("bob").RateAsync("c1", "b", null, Ct)).Status);

        var lines = (await node.Admin.GetTextAsync("/api/v1/export?format=preferences", Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using var line = JsonDocument.Parse(Assert.Single(lines));
        Assert.Equal(("a secret prompt", "y", "bob"), (line.RootElement.GetProperty("prompt").GetString(), line.RootElement.GetProperty("chosen").GetString(), line.RootElement.GetProperty("rater").GetString()));

        foreach (var format in new[] { "preferences", "scores", "csv" })
        {
            using var response = await node.Http.SendAsync(node.Request(HttpMethod.Get, $"/api/v1/export?format={format}", node.Tokens["alice"]), Ct);
            string body = await response.Content.ReadAsStringAsync(Ct);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.DoesNotContain("secret", body);
            Assert.DoesNotContain("bob", body);
        }
    }

    static string[] Counts(JsonDocument stats) =>
        [.. stats.RootElement.GetProperty("raters").EnumerateObject().Select(p => $"{p.Name}:{p.Value.GetInt32()}")];

    static (int Pending, int Rated, int Ratings, int ActiveRaters) Aggregates(JsonDocument stats)
    {
        var s = stats.RootElement;
        return (s.GetProperty("pending").GetInt32(), s.GetProperty("rated").GetInt32(), s.GetProperty("ratings").GetInt32(), s.GetProperty("activeRaters").GetInt32());
    }
}
