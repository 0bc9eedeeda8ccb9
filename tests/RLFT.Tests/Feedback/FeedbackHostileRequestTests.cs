using System.Net;
using System.Text;
using System.Text.Json;

namespace Rlft.Tests.Feedback;

/// <summary>
/// A node shared by the hostile cases: c1 (compare, two raters, ties allowed, no strength asked) leased to alice and
/// bob, s1 (score) leased to carol.
/// </summary>
public sealed class HostileNode : IAsyncLifetime
{
    internal FeedbackTestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        Node = await FeedbackTestNode.StartAsync();
        await Node.Admin.EnqueueAsync([
            new { id = "c1", kind = "compare", prompt = "p", completions = new[] { "x", "y" }, raters = 2, strength = false },
            FeedbackTestNode.Score("s1", "q", "z", raters: 1)], ct);
        Assert.Equal("c1", (await Node.Client("alice").NextAsync(ct))!.TaskId);
        Assert.Equal("c1", (await Node.Client("bob").NextAsync(ct))!.TaskId);
        Assert.Equal("s1", (await Node.Client("carol").NextAsync(ct))!.TaskId);
    }

    public ValueTask DisposeAsync() => Node.DisposeAsync();
}

/// <summary>Malformed and hostile requests against a real node: each gets its status, a plain error naming the field or reason, and changes nothing.</summary>
public class FeedbackHostileRequestTests(HostileNode shared) : IClassFixture<HostileNode>
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Names => new(FeedbackHostileCases.All.Keys);

    [Fact]
    public void The_corpus_covers_every_category_with_at_least_forty_cases()
    {
        Assert.True(FeedbackHostileCases.All.Count >= 40);
        var categories = FeedbackHostileCases.All.Keys.Select(k => k.Split(':')[0]).ToHashSet();
        Assert.Superset(new HashSet<string> { "encoding", "size", "auth", "role", "type", "method", "json", "shape" }, categories);
        // The rater workflow's endpoints and bodies have their own.
        Assert.Superset(new HashSet<string> { "answer", "skip", "flag", "undo", "me", "guideline", "rater", "discard", "item", "export", "overview" }, categories);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task A_hostile_request_gets_its_status_and_a_plain_error_and_changes_nothing(string name)
    {
        var c = FeedbackHostileCases.All[name];
        var node = shared.Node;
        string before = await JournalViewAsync(node);
        using var request = Build(node, c);
        using var response = await node.Http.SendAsync(request, Ct);
        string text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode == c.Status, $"expected {c.Status}, got {(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(["error"], doc.RootElement.EnumerateObject().Select(p => p.Name));
        string error = doc.RootElement.GetProperty("error").GetString()!;
        Assert.Contains(c.Error, error);
        Assert.DoesNotContain("Exception", error);
        Assert.DoesNotMatch(@"\bat [\w.]+\(", error);
        Assert.DoesNotContain('\n', error);
        Assert.Equal(before, await JournalViewAsync(node));
    }

    [Fact]
    public async Task After_the_corpus_the_node_still_rates_and_a_bom_and_charset_variants_are_accepted()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y")], Ct);
        await node.Client("alice").NextAsync(Ct);
        string[] types = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON; CHARSET=UTF-8", "application/json;charset=\"utf-8\""];
        var bodies = new List<string>();
        foreach (var (type, bom) in types.Select(t => (t, false)).Append(("application/json", true)))
        {
            byte[] body = [.. bom ? Encoding.UTF8.Preamble.ToArray() : [], .. Encoding.UTF8.GetBytes("""{"taskId":"c1","choice":"a"}""")];
            using var request = Build(node, new HostileCase("POST", "/api/v1/ratings", "alice", body, type, 201, ""));
            using var response = await node.Http.SendAsync(request, Ct);
            bodies.Add(await response.Content.ReadAsStringAsync(Ct));
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"{type} (BOM {bom}): {(int)response.StatusCode} {bodies[^1]}");
        }
        // The first stored the rating; the others are identical resubmissions answered with the same body.
        Assert.Single(bodies.Distinct());
        Assert.Single(await node.RatingsAsync());
    }

    /// <summary>
    /// What a refused request must not change: every stored rating and the aggregate counts; the skips, flags, undos,
    /// raters and discards (the overview, less its clock); every guideline version; and who holds which item.
    /// </summary>
    static async Task<string> JournalViewAsync(FeedbackTestNode node)
    {
        string ratings = await node.Admin.GetTextAsync("/api/v1/admin/ratings", Ct);
        using var stats = JsonDocument.Parse(await node.Client("alice").GetTextAsync("/api/v1/stats", Ct));
        var s = stats.RootElement;
        var overview = System.Text.Json.Nodes.JsonNode.Parse(await node.Admin.GetTextAsync("/api/v1/admin/overview", Ct))!.AsObject();
        overview.Remove("at");
        string guidelines = await node.Admin.GetTextAsync("/api/v1/admin/guidelines", Ct);
        string asides = await node.Admin.GetTextAsync("/api/v1/export?format=set-aside", Ct);
        var holds = new List<string>();
        foreach (var rater in new[] { "alice", "bob", "carol" })
            holds.Add((await node.Client(rater).NextAsync(Ct))?.TaskId ?? "-");
        return $"{ratings}|{s.GetProperty("pending")}|{s.GetProperty("rated")}|{s.GetProperty("timedOut")}|{s.GetProperty("ratings")}|{overview.ToJsonString()}|{guidelines}|{asides}|{string.Join(",", holds)}";
    }

    internal static HttpRequestMessage Build(FeedbackTestNode node, HostileCase c)
    {
        var request = new HttpRequestMessage(new HttpMethod(c.Method), c.Path);
        string? header = c.Auth switch
        {
            "none" => null,
            "forged" => "Bearer rlft_forged0000000000000000000000000000000",
            "revoked" => "Bearer " + node.RevokedToken,
            "admin" => "Bearer " + node.AdminToken,
            "hash:admin" => "Bearer " + Rlft.Actors.Feedback.RaterTokens.Hash(node.AdminToken),
            _ when c.Auth.StartsWith("raw:", StringComparison.Ordinal) => c.Auth[4..],
            _ when c.Auth.StartsWith("hash:", StringComparison.Ordinal) => "Bearer " + Rlft.Actors.Feedback.RaterTokens.Hash(node.Tokens[c.Auth[5..]]),
            _ => "Bearer " + node.Tokens[c.Auth],
        };
        if (header is not null) request.Headers.TryAddWithoutValidation("Authorization", header);
        if (c.Body is not null)
        {
            if (c.Chunked)
            {
                // No Content-Length: the limits must hold while streaming too.
                request.Content = new StreamContent(new NoLengthStream(c.Body));
                request.Headers.TransferEncodingChunked = true;
            }
            else request.Content = new ByteArrayContent(c.Body);
            if (c.ContentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", c.ContentType);
        }
        return request;
    }

    sealed class NoLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
