using System.Net;
using System.Text.Json;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>The rater workflow over HTTP against a real node: answers, skip, flag, undo, guidelines, raters, export.</summary>
public class FeedbackWorkflowHttpTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static async Task<JsonElement> GetJson(FeedbackClient client, string path) => JsonDocument.Parse(await client.GetTextAsync(path, Ct)).RootElement;

    static List<JsonElement> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    static async Task<HttpResponseMessage> Send(FeedbackTestNode node, HttpMethod method, string path, string token, string? json = null) =>
        await node.Http.SendAsync(node.Request(method, path, token, json), Ct);

    [Fact]
    public async Task A_conversation_pair_is_served_with_its_options_and_html_and_exported_in_TRL_form()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with { AskStrength = true });
        await node.Admin.EnqueueAsync([new
        {
            id = "conv",
            kind = "compare",
            messages = new object[] { new { role = "system", content = "Be brief." }, new { role = "user", content = "Sort `[3,1,2]` in **Python**." } },
            completions = new[] { "```python\nsorted([3, 1, 2])\n```", "Use `list.sort()` <script>x</script>" },
            rationale = "required",
        }], Ct);
        var task = await GetJson(node.Client("alice"), "/api/v1/tasks/next");
        Assert.Equal("", task.GetProperty("prompt").GetString());
        Assert.Equal(["system", "user"], task.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.Contains("<strong>Python</strong>", task.GetProperty("messages")[1].GetProperty("html").GetString());
        Assert.Contains("<code class=\"language-python\">", task.GetProperty("completions")[0].GetProperty("html").GetString());
        Assert.Contains("&lt;script&gt;", task.GetProperty("completions")[1].GetProperty("html").GetString());
        Assert.Equal(["tie", "both-bad"], task.GetProperty("verdicts").EnumerateArray().Select(v => v.GetString()));
        Assert.True(task.GetProperty("strength").GetBoolean());
        Assert.Equal("required", task.GetProperty("rationale").GetString());

        var noWhy = await node.Client("alice").RateAsync(new { taskId = "conv", choice = "a", strength = "much" }, Ct);
        Assert.Equal((HttpStatusCode.BadRequest, "rationale: this task needs a rationale (a sentence on why)"), (noWhy.Status, noWhy.Error));
        var ok = await node.Client("alice").RateAsync(new { taskId = "conv", choice = "a", strength = "much", rationale = "A is runnable Python" }, Ct);
        Assert.Equal(HttpStatusCode.Created, ok.Status);

        var line = Assert.Single(Lines(await node.Admin.GetTextAsync("/api/v1/export?format=preferences", Ct)));
        Assert.Equal(JsonValueKind.Array, line.GetProperty("prompt").ValueKind);
        Assert.Equal("Sort `[3,1,2]` in **Python**.", line.GetProperty("prompt")[1].GetProperty("content").GetString());
        Assert.Equal("assistant", line.GetProperty("chosen")[0].GetProperty("role").GetString());
        Assert.StartsWith("```python", line.GetProperty("chosen")[0].GetProperty("content").GetString());
        Assert.Equal(("a", "much", 1.0, 1.0, "A is runnable Python"),
            (line.GetProperty("answer").GetString(), line.GetProperty("strength").GetString(), line.GetProperty("label").GetDouble(),
             line.GetProperty("weight").GetDouble(), line.GetProperty("rationale").GetString()));
    }

    [Fact]
    public async Task Ties_and_strengths_reach_the_export_as_labels_and_ties_are_dropped_unless_asked_for()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([
            new { id = "p1", kind = "compare", prompt = "q1", completions = new[] { "x", "y" }, strength = true },
            new { id = "p2", kind = "compare", prompt = "q2", completions = new[] { "x", "y" } },
            new { id = "p3", kind = "compare", prompt = "q3", completions = new[] { "x", "y" } },
        ], Ct);
        var alice = node.Client("alice");
        foreach (var body in new object[] { new { taskId = "p1", choice = "b", strength = "slightly" }, new { taskId = "p2", verdict = "tie" }, new { taskId = "p3", verdict = "both-bad" } })
        {
            await alice.NextAsync(Ct);
            Assert.Equal(HttpStatusCode.Created, (await alice.RateAsync(body, Ct)).Status);
        }
        var dropped = Lines(await node.Admin.GetTextAsync("/api/v1/export?format=preferences", Ct));
        var p1 = Assert.Single(dropped);
        Assert.Equal(("y", "x", "b", 0.75), (p1.GetProperty("chosen").GetString(), p1.GetProperty("rejected").GetString(), p1.GetProperty("answer").GetString(), p1.GetProperty("label").GetDouble()));
        var half = Lines(await node.Admin.GetTextAsync("/api/v1/export?format=preferences&ties=half&both-bad=half", Ct));
        Assert.Equal(["b", "tie", "both-bad"], half.Select(l => l.GetProperty("answer").GetString()));
        Assert.Equal([0.75, 0.5, 0.5], half.Select(l => l.GetProperty("label").GetDouble()));
        Assert.Equal(2, Lines(await node.Admin.GetTextAsync("/api/v1/export?format=preferences&ties=half", Ct)).Count);
    }

    [Fact]
    public async Task Criteria_scores_are_validated_and_exported_with_their_mean()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with { Criteria = ["helpfulness", "harmlessness"] });
        await node.Admin.EnqueueAsync([FeedbackTestNode.Score("s1", "Rate", "an answer")], Ct);
        var task = await GetJson(node.Client("bob"), "/api/v1/tasks/next");
        Assert.Equal(["helpfulness", "harmlessness"], task.GetProperty("criteria").EnumerateArray().Select(c => c.GetString()));
        var partial = await node.Client("bob").RateAsync(new { taskId = "s1", scores = new { a = new { helpfulness = 6 } } }, Ct);
        Assert.Equal((HttpStatusCode.BadRequest, "scores.a.harmlessness: missing"), (partial.Status, partial.Error));
        Assert.Equal(HttpStatusCode.Created, (await node.Client("bob").RateAsync(new { taskId = "s1", scores = new { a = new { helpfulness = 6, harmlessness = 3 } } }, Ct)).Status);
        var line = Assert.Single(Lines(await node.Admin.GetTextAsync("/api/v1/export?format=scores", Ct)));
        Assert.Equal(4.5, line.GetProperty("score").GetDouble());
        Assert.Equal(3, line.GetProperty("criteria").GetProperty("harmlessness").GetInt32());
    }

    [Fact]
    public async Task Skip_flag_undo_and_discard_work_over_http_and_show_in_progress_and_overview()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with { RatersPerItem = 2 });
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y", raters: 2), FeedbackTestNode.Compare("c2", "p", "x", "y", raters: 2), FeedbackTestNode.Compare("c3", "p", "x", "y", raters: 2)], Ct);
        var alice = node.Client("alice");
        Assert.Equal("c1", (await alice.NextAsync(Ct))!.TaskId);
        Assert.Equal(HttpStatusCode.Created, (await alice.SetAsideAsync("c1", broken: false, ct: Ct)).Status);
        Assert.Equal(HttpStatusCode.OK, (await alice.SetAsideAsync("c1", broken: false, ct: Ct)).Status);        // a repeat
        Assert.Equal("c2", (await alice.NextAsync(Ct))!.TaskId);
        Assert.Equal(HttpStatusCode.Created, (await alice.SetAsideAsync("c2", broken: true, "the two answers are identical", Ct)).Status);
        Assert.Equal("c3", (await alice.NextAsync(Ct))!.TaskId);
        var rated = await alice.RateAsync("c3", "a", null, Ct);
        var me = await GetJson(alice, "/api/v1/me");
        Assert.Equal((1, 1, 1, 0), (me.GetProperty("rated").GetInt32(), me.GetProperty("skipped").GetInt32(), me.GetProperty("flagged").GetInt32(), me.GetProperty("remaining").GetInt32()));
        Assert.Equal(rated.RatingId, me.GetProperty("undo").GetProperty("ratingId").GetString());

        var undo = await alice.UndoAsync(ct: Ct);
        Assert.Equal((HttpStatusCode.OK, rated.RatingId), (undo.Status, undo.RatingId));
        Assert.Equal((HttpStatusCode.OK, rated.RatingId), ((await alice.UndoAsync(rated.RatingId, Ct)).Status, rated.RatingId));   // a repeat
        Assert.Equal(HttpStatusCode.Conflict, (await alice.UndoAsync(ct: Ct)).Status);
        Assert.Equal("c3", (await alice.NextAsync(Ct))!.TaskId);                                            // back for a new answer
        Assert.Empty(await node.RatingsAsync());

        Assert.Equal("c1", (await node.Client("bob").NextAsync(Ct))!.TaskId);                               // alice's skip went to bob
        using var discard = await Send(node, HttpMethod.Post, "/api/v1/admin/items/c2/discard", node.AdminToken);
        Assert.Equal(HttpStatusCode.OK, discard.StatusCode);
        var overview = await GetJson(node.Admin, "/api/v1/admin/overview");
        var flagged = Assert.Single(overview.GetProperty("flagged").EnumerateArray());
        Assert.Equal(("c2", "discarded", "the two answers are identical"),
            (flagged.GetProperty("itemId").GetString(), flagged.GetProperty("outcome").GetString(), flagged.GetProperty("flags")[0].GetProperty("reason").GetString()));
        var a = overview.GetProperty("raters").EnumerateArray().Single(r => r.GetProperty("name").GetString() == "alice");
        Assert.Equal((0, 1, 1, 1), (a.GetProperty("rated").GetInt32(), a.GetProperty("skipped").GetInt32(), a.GetProperty("flagged").GetInt32(), a.GetProperty("undone").GetInt32()));
        Assert.Equal(1, overview.GetProperty("discarded").GetInt32());
        var asides = Lines(await node.Admin.GetTextAsync("/api/v1/export?format=set-aside", Ct));
        Assert.Equal(["skip", "broken"], asides.Select(l => l.GetProperty("kind").GetString()));
    }

    [Fact]
    public async Task Guidelines_from_config_and_admin_are_versioned_shown_with_tasks_and_recorded_with_ratings()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with { Guidelines = new Dictionary<string, string> { ["default"] = "# Rate\nBe **fair**." } });
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y"), FeedbackTestNode.Compare("c2", "p", "x", "y")], Ct);
        var first = await GetJson(node.Client("alice"), "/api/v1/tasks/next");
        Assert.Equal(("default", 1), (first.GetProperty("guideline").GetProperty("name").GetString(), first.GetProperty("guideline").GetProperty("version").GetInt32()));
        Assert.Contains("<strong>fair</strong>", first.GetProperty("guideline").GetProperty("html").GetString());

        using var put = await Send(node, HttpMethod.Put, "/api/v1/admin/guidelines/compare", node.AdminToken, """{"markdown":"Prefer *correct* over long."}""");
        Assert.Equal("""{"name":"compare","version":1,"changed":true}""", await put.Content.ReadAsStringAsync(Ct));
        using var same = await Send(node, HttpMethod.Put, "/api/v1/admin/guidelines/compare", node.AdminToken, """{"markdown":"Prefer *correct* over long."}""");
        Assert.Equal("""{"name":"compare","version":1,"changed":false}""", await same.Content.ReadAsStringAsync(Ct));

        Assert.Equal(HttpStatusCode.Created, (await node.Client("alice").RateAsync("c1", "a", null, Ct)).Status);   // under default v1
        var second = await GetJson(node.Client("alice"), "/api/v1/tasks/next");
        Assert.Equal(("compare", 1), (second.GetProperty("guideline").GetProperty("name").GetString(), second.GetProperty("guideline").GetProperty("version").GetInt32()));
        Assert.Equal(HttpStatusCode.Created, (await node.Client("alice").RateAsync("c2", "b", null, Ct)).Status);
        var lines = Lines(await node.Admin.GetTextAsync("/api/v1/export?format=preferences", Ct));
        Assert.Equal(["default", "compare"], lines.Select(l => l.GetProperty("guideline").GetProperty("name").GetString()));
        var all = await GetJson(node.Admin, "/api/v1/admin/guidelines");
        Assert.Equal(["compare:1:admin", "default:1:config"], all.GetProperty("guidelines").EnumerateArray()
            .Select(g => $"{g.GetProperty("name").GetString()}:{g.GetProperty("version").GetInt32()}:{g.GetProperty("source").GetString()}"));
        var forRaters = await GetJson(node.Client("bob"), "/api/v1/guidelines");
        Assert.Equal(2, forRaters.GetProperty("guidelines").GetArrayLength());
    }

    [Fact]
    public async Task Raters_added_and_revoked_through_the_admin_api_take_effect_at_once_and_survive_a_restart()
    {
        string dir = FeedbackTestNode.TempDirectory();
        var node = await FeedbackTestNode.StartAsync(directory: dir);
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y", raters: 3)], Ct);
        using var added = await Send(node, HttpMethod.Post, "/api/v1/admin/raters", node.AdminToken, """{"name":"zoe"}""");
        Assert.Equal(HttpStatusCode.Created, added.StatusCode);
        string zoeToken = JsonDocument.Parse(await added.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString()!;
        var zoe = new FeedbackClient(node.Http, zoeToken);
        Assert.Equal("c1", (await zoe.NextAsync(Ct))!.TaskId);

        using var rotated = await Send(node, HttpMethod.Post, "/api/v1/admin/raters/bob/token", node.AdminToken);
        string bobToken = JsonDocument.Parse(await rotated.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString()!;
        using var oldBob = await Send(node, HttpMethod.Get, "/api/v1/me", node.Tokens["bob"]);
        Assert.Equal(HttpStatusCode.Unauthorized, oldBob.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Send(node, HttpMethod.Get, "/api/v1/me", bobToken)).StatusCode);

        using var revoked = await Send(node, HttpMethod.Post, "/api/v1/admin/raters/zoe/revoke", node.AdminToken);
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        using var after = await Send(node, HttpMethod.Get, "/api/v1/tasks/next", zoeToken);
        Assert.Equal(HttpStatusCode.Forbidden, after.StatusCode);
        Assert.Contains("revoked", await after.Content.ReadAsStringAsync(Ct));
        await node.StopAsync();

        // The journal, not the config, holds these raters: a restart with the same config keeps them.
        await using var again = await FeedbackTestNode.StartAsync(directory: dir);
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(again, HttpMethod.Get, "/api/v1/me", zoeToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Send(again, HttpMethod.Get, "/api/v1/me", bobToken)).StatusCode);
        var overview = await GetJson(again.Admin, "/api/v1/admin/overview");
        var z = overview.GetProperty("raters").EnumerateArray().Single(r => r.GetProperty("name").GetString() == "zoe");
        Assert.Equal(("api", true), (z.GetProperty("source").GetString(), z.GetProperty("revoked").GetBoolean()));
        await using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, "feedback.db")};Mode=ReadOnly;Pooling=False");
        await db.OpenAsync(Ct);
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT CAST(message AS TEXT) FROM journal WHERE manifest LIKE 'Rater%'";
        var rows = new List<string>();
        await using (var reader = await cmd.ExecuteReaderAsync(Ct))
            while (await reader.ReadAsync(Ct)) rows.Add(reader.GetString(0));
        Assert.Equal(3, rows.Count);
        Assert.DoesNotContain(rows, r => r.Contains(zoeToken) || r.Contains(bobToken));                     // hashes only
        Assert.Contains(rows, r => r.Contains(RaterTokens.Hash(zoeToken)));
    }
}
