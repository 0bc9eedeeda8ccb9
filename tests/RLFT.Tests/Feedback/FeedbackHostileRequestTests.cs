using System.Net;
using System.Text;
using System.Text.Json;

namespace Rlft.Tests.Feedback;

/// <summary>Malformed and hostile requests against a real node: each gets the right status, a plain error, and stores nothing.</summary>
public class FeedbackHostileRequestTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>(name, method, path, token: alice|bob|carol|dave|revoked|forged|none|admin|raw header, body, content type, expected status).</summary>
    public static TheoryData<string, string, string, string, string?, string, int> Cases() => new()
    {
        { "no token", "POST", "/api/v1/ratings", "none", """{"taskId":"c1","choice":"a"}""", "application/json", 401 },
        { "basic auth", "POST", "/api/v1/ratings", "raw:Basic YWxpY2U6cHc=", """{"taskId":"c1","choice":"a"}""", "application/json", 401 },
        { "empty bearer", "POST", "/api/v1/ratings", "raw:Bearer ", """{"taskId":"c1","choice":"a"}""", "application/json", 401 },
        { "forged token", "POST", "/api/v1/ratings", "forged", """{"taskId":"c1","choice":"a"}""", "application/json", 401 },
        { "token hash as token", "POST", "/api/v1/ratings", "hash:alice", """{"taskId":"c1","choice":"a"}""", "application/json", 401 },
        { "revoked token", "POST", "/api/v1/ratings", "revoked", """{"taskId":"c1","choice":"a"}""", "application/json", 403 },
        { "revoked token asks for work", "GET", "/api/v1/tasks/next", "revoked", null, "", 403 },
        { "no token asks for work", "GET", "/api/v1/tasks/next", "none", null, "", 401 },
        { "forged token reads stats", "GET", "/api/v1/stats", "forged", null, "", 401 },
        { "revoked token exports", "GET", "/api/v1/export?format=preferences", "revoked", null, "", 403 },
        { "oversized auth header", "GET", "/api/v1/stats", "raw:Bearer " + new string('x', 600), null, "", 401 },
        { "rater uses admin api", "POST", "/api/v1/admin/items", "alice", """{"items":[{"kind":"score","prompt":"p","completions":["x"]}]}""", "application/json", 403 },
        { "no token on admin api", "POST", "/api/v1/admin/items", "none", """{"items":[{"kind":"score","prompt":"p","completions":["x"]}]}""", "application/json", 401 },
        { "truncated json", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1",""", "application/json", 400 },
        { "not json", "POST", "/api/v1/ratings", "alice", "choice=a", "application/json", 400 },
        { "json array", "POST", "/api/v1/ratings", "alice", """[{"taskId":"c1","choice":"a"}]""", "application/json", 400 },
        { "json null", "POST", "/api/v1/ratings", "alice", "null", "application/json", 400 },
        { "empty body", "POST", "/api/v1/ratings", "alice", "", "application/json", 400 },
        { "taskId is a number", "POST", "/api/v1/ratings", "alice", """{"taskId":17,"choice":"a"}""", "application/json", 400 },
        { "taskId missing", "POST", "/api/v1/ratings", "alice", """{"choice":"a"}""", "application/json", 400 },
        { "choice and scores", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1","choice":"a","scores":{"a":3}}""", "application/json", 400 },
        { "neither choice nor scores", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1"}""", "application/json", 400 },
        { "choice is a number", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1","choice":1}""", "application/json", 400 },
        { "choice not a completion", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1","choice":"c"}""", "application/json", 400 },
        { "scores on a compare task", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1","scores":{"a":3,"b":4}}""", "application/json", 400 },
        { "scores is a list", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","scores":[5]}""", "application/json", 400 },
        { "score is a string", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","scores":{"a":"7"}}""", "application/json", 400 },
        { "score is fractional", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","scores":{"a":3.5}}""", "application/json", 400 },
        { "score 0", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","scores":{"a":0}}""", "application/json", 400 },
        { "score 8", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","scores":{"a":8}}""", "application/json", 400 },
        { "score negative", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","scores":{"a":-3}}""", "application/json", 400 },
        { "score 1e100", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","scores":{"a":1e100}}""", "application/json", 400 },
        { "score for an unknown completion", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","scores":{"a":3,"z":4}}""", "application/json", 400 },
        { "choice on a score task", "POST", "/api/v1/ratings", "carol", """{"taskId":"s1","choice":"a"}""", "application/json", 400 },
        { "unknown field", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1","choice":"a","extra":true}""", "application/json", 400 },
        { "rater spoofed in body", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1","choice":"a","rater":"bob"}""", "application/json", 400 },
        { "repeated taskId", "POST", "/api/v1/ratings", "alice", """{"taskId":"zz","taskId":"c1","choice":"a"}""", "application/json", 400 },
        { "script in taskId", "POST", "/api/v1/ratings", "alice", """{"taskId":"<script>alert(1)</script>","choice":"a"}""", "application/json", 400 },
        { "script in choice", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1","choice":"<img src=x onerror=alert(1)>"}""", "application/json", 400 },
        { "deeply nested json", "POST", "/api/v1/ratings", "alice", new string('[', 200) + new string(']', 200), "application/json", 400 },
        { "unknown task", "POST", "/api/v1/ratings", "alice", """{"taskId":"nope","choice":"a"}""", "application/json", 404 },
        { "another rater's task", "POST", "/api/v1/ratings", "dave", """{"taskId":"c1","choice":"a"}""", "application/json", 403 },
        { "task leased to someone else", "POST", "/api/v1/ratings", "alice", """{"taskId":"s1","scores":{"a":3}}""", "application/json", 403 },
        { "huge body", "POST", "/api/v1/ratings", "alice", "{\"taskId\":\"c1\",\"choice\":\"a\",\"pad\":\"" + new string('x', 100_000) + "\"}", "application/json", 413 },
        { "huge chunked body", "POST", "/api/v1/ratings", "alice", "chunked:" + new string(' ', 100_000) + """{"taskId":"c1","choice":"a"}""", "application/json", 413 },
        { "text/plain body", "POST", "/api/v1/ratings", "alice", """{"taskId":"c1","choice":"a"}""", "text/plain", 415 },
        { "export in an unknown format", "GET", "/api/v1/export?format=csv", "alice", null, "", 400 },
        { "admin item with three completions to compare", "POST", "/api/v1/admin/items", "admin", """{"items":[{"kind":"compare","prompt":"p","completions":["x","y","z"]}]}""", "application/json", 400 },
        { "admin item of unknown kind", "POST", "/api/v1/admin/items", "admin", """{"items":[{"kind":"rank","prompt":"p","completions":["x"]}]}""", "application/json", 400 },
        { "admin item needing 0 raters", "POST", "/api/v1/admin/items", "admin", """{"items":[{"kind":"score","prompt":"p","completions":["x"],"raters":0}]}""", "application/json", 400 },
        { "admin item reusing an id with other content", "POST", "/api/v1/admin/items", "admin", """{"items":[{"id":"c1","kind":"score","prompt":"p","completions":["x"]}]}""", "application/json", 400 },
    };

    [Fact]
    public async Task Hostile_requests_get_the_right_status_a_plain_error_and_store_nothing()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y", raters: 2), FeedbackTestNode.Score("s1", "q", "z", raters: 1)], Ct);
        Assert.Equal("c1", (await node.Client("alice").NextAsync(Ct))!.TaskId);
        Assert.Equal("c1", (await node.Client("bob").NextAsync(Ct))!.TaskId);
        Assert.Equal("s1", (await node.Client("carol").NextAsync(Ct))!.TaskId);
        string before = await node.Client("alice").GetTextAsync("/api/v1/export?format=preferences", Ct);
        var cases = Cases();
        Assert.True(cases.Count >= 30);
        var failures = new List<string>();
        foreach (var row in cases)
        {
            var (name, method, path, token, body, type, expected) = row.Data;
            using var request = Build(node, method, path, token, body, type);
            using var response = await node.Http.SendAsync(request, Ct);
            string text = await response.Content.ReadAsStringAsync(Ct);
            if ((int)response.StatusCode != expected) failures.Add($"{name}: expected {expected}, got {(int)response.StatusCode} {text}");
            else if (!IsPlainError(text)) failures.Add($"{name}: body is not a plain {{\"error\"}}: {text}");
            if ((await node.RatingsAsync()).Length != 0) failures.Add($"{name}: a rating was stored");
        }
        Assert.Empty(failures);
        Assert.Equal(before, await node.Client("alice").GetTextAsync("/api/v1/export?format=preferences", Ct));
        // Only the two original items exist: no admin request that was refused added one.
        using var stats = JsonDocument.Parse(await node.Client("alice").GetTextAsync("/api/v1/stats", Ct));
        Assert.Equal(2, stats.RootElement.GetProperty("pending").GetInt32());
        // And the node still works for a well-formed request.
        Assert.Equal(HttpStatusCode.Created, (await node.Client("alice").RateAsync("c1", "a", null, Ct)).Status);
    }

    static bool IsPlainError(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.TryGetProperty("error", out var e) && e.GetString() is { Length: > 0 } m
                && !m.Contains(" at ", StringComparison.Ordinal) && !m.Contains("Exception", StringComparison.Ordinal);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    static HttpRequestMessage Build(FeedbackTestNode node, string method, string path, string token, string? body, string type)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        string? header = token switch
        {
            "none" => null,
            "forged" => "Bearer rlft_forged0000000000000000000000000000000",
            "revoked" => "Bearer " + node.RevokedToken,
            "admin" => "Bearer " + node.AdminToken,
            _ when token.StartsWith("raw:", StringComparison.Ordinal) => token[4..],
            _ when token.StartsWith("hash:", StringComparison.Ordinal) => "Bearer " + Rlft.Actors.Feedback.RaterTokens.Hash(node.Tokens[token[5..]]),
            _ => "Bearer " + node.Tokens[token],
        };
        if (header is not null) request.Headers.TryAddWithoutValidation("Authorization", header);
        if (body is not null)
        {
            if (body.StartsWith("chunked:", StringComparison.Ordinal))
            {
                // No Content-Length: the limit must hold while streaming too.
                request.Content = new StreamContent(new NoLengthStream(Encoding.UTF8.GetBytes(body[8..])));
                request.Headers.TransferEncodingChunked = true;
            }
            else request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
        }
        return request;
    }

    sealed class NoLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
