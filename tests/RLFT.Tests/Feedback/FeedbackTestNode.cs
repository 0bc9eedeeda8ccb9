using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>A real feedback node in this process: Kestrel on 127.0.0.1 (port 0), a SQLite journal in a temp folder.</summary>
internal sealed class FeedbackTestNode : IAsyncDisposable
{
    public static readonly string[] RaterNames = ["alice", "bob", "carol", "dave"];
    public Dictionary<string, string> Tokens { get; } = RaterNames.ToDictionary(n => n, _ => RaterTokens.NewToken());
    public string RevokedToken { get; } = RaterTokens.NewToken();
    public string AdminToken { get; } = RaterTokens.NewToken();
    public string Directory { get; }
    public FeedbackOptions Options { get; private set; } = null!;
    public Uri Url { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public IServiceProvider Services => _app.Services;
    WebApplication _app = null!;

    FeedbackTestNode(string directory) => Directory = directory;

    /// <summary>
    /// <paramref name="logging"/> adds log providers (none by default); <paramref name="endpoints"/> maps extra
    /// endpoints before the node starts (they run behind the same middleware as the API).
    /// </summary>
    public static async Task<FeedbackTestNode> StartAsync(Func<FeedbackOptions, FeedbackOptions>? configure = null, string? directory = null,
        Action<ILoggingBuilder>? logging = null, Action<WebApplication>? endpoints = null, TimeProvider? clock = null)
    {
        var node = new FeedbackTestNode(directory ?? TempDirectory());
        var options = new FeedbackOptions
        {
            Journal = Path.Combine(node.Directory, "feedback.db"),
            Raters = [.. node.Tokens.Select(t => new RaterEntry(t.Key, RaterTokens.Hash(t.Value))), new RaterEntry("mallory", RaterTokens.Hash(node.RevokedToken), Revoked: true)],
            AdminTokenSha256 = RaterTokens.Hash(node.AdminToken),
            RatePerSecond = 10_000,
            RateBurst = 10_000,
            Tick = TimeSpan.FromMilliseconds(50),
        };
        node.Options = configure?.Invoke(options) ?? options;
        // Not with serialize-messages = on: Akka.Persistence.Sql's internal WriteFinished (it carries a Task) cannot
        // be serialized, is dropped, and the journal then stalls. FeedbackSerializerTests round-trips every message.
        node._app = FeedbackNode.Build(node.Options, ["http://127.0.0.1:0"], logging, clock: clock);
        endpoints?.Invoke(node._app);
        await node._app.StartAsync(TestContext.Current.CancellationToken);
        node.Url = new Uri(node._app.Urls.First());
        node.Http = new HttpClient { BaseAddress = node.Url };
        return node;
    }

    public static string TempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlft-feedback-test-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }

    public FeedbackClient Client(string rater) => new(Http, Tokens[rater]);
    public FeedbackClient Admin => new(Http, AdminToken);

    public HttpRequestMessage Request(HttpMethod method, string path, string? token, string? json = null, string contentType = "application/json")
    {
        var r = new HttpRequestMessage(method, path);
        if (token is not null) r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null) r.Content = new StringContent(json, System.Text.Encoding.UTF8, contentType);
        return r;
    }

    /// <summary>Every stored rating (admin JSONL), one string per rating.</summary>
    public async Task<string[]> RatingsAsync() =>
        (await Admin.GetTextAsync("/api/v1/admin/ratings", TestContext.Current.CancellationToken)).Split('\n', StringSplitOptions.RemoveEmptyEntries);

    bool _stopped;

    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        Http.Dispose();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }

    /// <summary>A clock that stands still (or moves only when told), for journals written at a known time.</summary>
    public sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    public static object Compare(string id, string prompt, string a, string b, int raters = 1) =>
        new { id, kind = "compare", prompt, completions = new[] { new { id = "a", text = a }, new { id = "b", text = b } }, raters };

    public static object Score(string id, string prompt, string text, int raters = 1) =>
        new { id, kind = "score", prompt, completions = new[] { new { id = "a", text } }, raters };
}
