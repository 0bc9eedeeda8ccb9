using System.Collections.Concurrent;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Feedback;
using Rlft.Actors.Feedback.Http;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Feedback;

/// <summary>The feedback node's request log: one line per request, a 5xx at error level with its exception, and never a token.</summary>
public class FeedbackLoggingTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static string Boom() => throw new InvalidOperationException("the test endpoint failed");

    static Task<FeedbackTestNode> StartAsync(CapturedLog log) => FeedbackTestNode.StartAsync(
        logging: l => l.AddProvider(log).SetMinimumLevel(LogLevel.Trace),
        endpoints: app => app.MapGet("/api/v1/boom", Boom));

    [Fact]
    public async Task Every_request_is_one_line_with_method_path_status_and_duration_and_a_500_is_one_error_with_its_exception()
    {
        var log = new CapturedLog();
        await using var node = await StartAsync(log);
        string alice = node.Tokens["alice"];
        var sent = new (HttpRequestMessage Request, int Status, string Line, LogLevel Level)[]
        {
            (node.Request(HttpMethod.Get, "/healthz", null), 200, "GET /healthz 200 * ms -", LogLevel.Information),
            (node.Request(HttpMethod.Get, "/api/v1/stats", alice), 200, "GET /api/v1/stats 200 * ms alice", LogLevel.Information),
            (node.Request(HttpMethod.Post, "/api/v1/ratings", alice, """{"taskId":17}"""), 400, "POST /api/v1/ratings 400 * ms alice", LogLevel.Information),
            (node.Request(HttpMethod.Get, "/api/v1/tasks/next", null), 401, "GET /api/v1/tasks/next 401 * ms -", LogLevel.Information),
            (node.Request(HttpMethod.Get, "/api/v1/export?format=scores", node.AdminToken), 200, "GET /api/v1/export 200 * ms (admin)", LogLevel.Information),
            (node.Request(HttpMethod.Get, "/api/v1/boom", alice), 500, "GET /api/v1/boom 500 * ms alice", LogLevel.Error),
        };
        foreach (var (request, status, _, _) in sent)
        {
            using var response = await node.Http.SendAsync(request, Ct);
            Assert.Equal(status, (int)response.StatusCode);
            if (status == 500) Assert.Equal("""{"error":"internal error"}""", await response.Content.ReadAsStringAsync(Ct));
        }
        var lines = await log.WaitForAsync(RequestLogMiddleware.Category, sent.Length);
        Assert.Equal(sent.Length, lines.Count);
        foreach (var (_, _, line, level) in sent)
        {
            string pattern = "^" + Regex.Escape(line).Replace(@"\*", @"\d+\.\d") + "$";
            Assert.Equal(level, Assert.Single(lines, l => Regex.IsMatch(l.Message, pattern)).Level);
        }
        // The failure is logged once, here, with the exception; nothing else logged an error.
        var error = Assert.Single(log.Entries, e => e.Level >= LogLevel.Error);
        Assert.Equal(RequestLogMiddleware.Category, error.Category);
        Assert.Equal("the test endpoint failed", Assert.IsType<InvalidOperationException>(error.Exception).Message);
    }

    [Fact]
    public async Task No_log_line_holds_a_token_or_a_token_hash_whatever_the_request()
    {
        var log = new CapturedLog();
        await using var node = await StartAsync(log);
        string alice = node.Tokens["alice"];
        string[] secrets = [.. node.Tokens.Values, node.RevokedToken, node.AdminToken];
        string[] forbidden = [.. secrets, .. secrets.Select(RaterTokens.Hash)];
        int requests = 0;
        foreach (var (name, c) in FeedbackHostileCases.All)
        {
            using var request = FeedbackHostileRequestTests.Build(node, c);
            try { using var response = await node.Http.SendAsync(request, Ct); }
            catch (HttpRequestException e) { throw new Exception(name, e); }
            requests++;
        }
        // Tokens where they do not belong: in the path, the query, a malformed header, and on a request that fails.
        foreach (var (path, header) in new[]
        {
            ($"/api/v1/{alice}", "Bearer " + alice),
            ($"/api/v1/stats?token={alice}", "Bearer " + alice),
            ($"/api/v1/{RaterTokens.Hash(node.AdminToken)}", "Bearer " + node.AdminToken),
            ("/api/v1/stats", $"Bearer {alice} {alice}"),
            ("/api/v1/stats", "Basic " + alice),
            ("/api/v1/stats", "Bearer " + alice + new string('x', 600)),
            ("/api/v1/boom", "Bearer " + alice),
        })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.TryAddWithoutValidation("Authorization", header);
            using var response = await node.Http.SendAsync(request, Ct);
            requests++;
        }
        var lines = await log.WaitForAsync(RequestLogMiddleware.Category, requests);
        Assert.Contains(lines, l => l.Message.StartsWith("GET /api/v1/[token] 404", StringComparison.Ordinal));
        Assert.Equal(2, lines.Count(l => l.Message.StartsWith("GET /api/v1/[token] 404", StringComparison.Ordinal)));
        foreach (var entry in log.Entries)
            foreach (var secret in forbidden)
                Assert.DoesNotContain(secret, entry.Category + " " + entry.Message + " " + entry.Exception, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_job_hosted_endpoint_logs_its_requests_through_the_nodes_log()
    {
        var log = new CapturedLog();
        string token = RaterTokens.NewToken();
        string overrides = $$"""
            rlft.job.output-dir = "{{FeedbackTestNode.TempDirectory()}}"
            rlft.feedback.urls = ["http://127.0.0.1:0"]
            rlft.feedback.raters = [ {{RaterTokens.ConfigLine("sim-a", token)}} ]
            """;
        var job = JobSpec.Parse(RlftConfig.ParseText(overrides, "test-overrides")
            .WithFallback(RlftConfig.LoadFile(Path.Combine(RlftConfig.HoconDirectory, "human-ppo.conf"))));
        await using var node = RlftNode.Create(new NodeOptions { Job = job, Roles = ["feedback"], LoggerProvider = log, MinimumLogLevel = LogLevel.Information }, new TorchEngineFactory());
        await node.StartAsync(Ct);
        using var http = new HttpClient { BaseAddress = new Uri(Assert.Single(node.FeedbackUrls)) };
        var rater = new FeedbackClient(http, token);
        Assert.Contains("\"sim-a\"", await rater.GetTextAsync("/api/v1/stats", Ct));
        await Assert.ThrowsAsync<HttpRequestException>(() => rater.GetTextAsync("/api/v1/export?format=scores", Ct));
        var lines = await log.WaitForAsync(RequestLogMiddleware.Category, 2);
        Assert.Matches(@"^GET /api/v1/stats 200 \d+\.\d ms sim-a$", lines[0].Message);
        Assert.Matches(@"^GET /api/v1/export 403 \d+\.\d ms sim-a$", lines[1].Message);
        Assert.All(log.Entries, e => Assert.DoesNotContain(token, e.Message + e.Exception));
    }

    [Fact]
    public async Task A_token_issued_through_the_admin_api_is_masked_too_and_never_logged()
    {
        var log = new CapturedLog();
        await using var node = await StartAsync(log);
        using var added = await node.Http.SendAsync(node.Request(HttpMethod.Post, "/api/v1/admin/raters", node.AdminToken, """{"name":"zoe"}"""), Ct);
        string token = System.Text.Json.JsonDocument.Parse(await added.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString()!;
        using var rotated = await node.Http.SendAsync(node.Request(HttpMethod.Post, "/api/v1/admin/raters/zoe/token", node.AdminToken), Ct);
        string second = System.Text.Json.JsonDocument.Parse(await rotated.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("token").GetString()!;
        using var pasted = await node.Http.SendAsync(node.Request(HttpMethod.Get, $"/api/v1/{second}", second), Ct);
        var lines = await log.WaitForAsync(RequestLogMiddleware.Category, 3);
        Assert.Matches(@"^POST /api/v1/admin/raters 201 \d+\.\d ms \(admin\)$", lines[0].Message);
        Assert.StartsWith("GET /api/v1/[token] 404", lines[2].Message);
        Assert.EndsWith(" zoe", lines[2].Message);
        foreach (var secret in new[] { token, second, RaterTokens.Hash(token), RaterTokens.Hash(second) })
            Assert.All(log.Entries, e => Assert.DoesNotContain(secret, e.Category + " " + e.Message + " " + e.Exception, StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task A_node_without_log_providers_answers_the_same()
    {
        await using var node = await FeedbackTestNode.StartAsync(endpoints: app => app.MapGet("/api/v1/boom", Boom));
        using var response = await node.Http.SendAsync(node.Request(HttpMethod.Get, "/api/v1/boom", node.Tokens["alice"]), Ct);
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("""{"error":"internal error"}""", await response.Content.ReadAsStringAsync(Ct));
    }
}

/// <summary>Every log entry of every category, in order.</summary>
public sealed class CapturedLog : ILoggerProvider
{
    public sealed record Entry(string Category, LogLevel Level, string Message, Exception? Exception);

    readonly ConcurrentQueue<Entry> _entries = new();
    public IReadOnlyList<Entry> Entries => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>The entries of <paramref name="category"/> once there are <paramref name="count"/> (a request is logged after its answer is sent).</summary>
    public async Task<IReadOnlyList<Entry>> WaitForAsync(string category, int count)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        while (Entries.Count(e => e.Category == category) < count)
            await Task.Delay(5, timeout.Token);
        return [.. Entries.Where(e => e.Category == category)];
    }

    public void Dispose() { }

    sealed class Logger(CapturedLog owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._entries.Enqueue(new Entry(category, logLevel, formatter(state, exception), exception));
    }
}
