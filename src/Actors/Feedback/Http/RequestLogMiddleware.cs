using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// The outermost step of a feedback request: refusals thrown by handlers become <c>{"error": "..."}</c> with their
/// status, anything unexpected a bare 500 (never a stack trace in a response), and a 404/405 from routing gets the
/// same JSON body. Then one log line per request (category <see cref="Category"/>): method, path, status, duration and
/// the caller's name, at Information; a 5xx at Error, with its exception when there is one, logged here and nowhere
/// else. A log line never holds a token or its hash: headers and the query string are not logged, and a path segment
/// that is a known token (configured or issued through the admin API), or its hash, is written as <c>[token]</c>.
/// </summary>
internal sealed class RequestLogMiddleware(RequestDelegate next, ILoggerFactory loggers, FeedbackOptions options, RaterRegistry raters)
{
    public const string Category = "Rlft.Feedback.Http";
    readonly ILogger _log = loggers.CreateLogger(Category);
    readonly HashSet<string> _tokenHashes = [.. options.Raters.Select(r => r.TokenSha256), .. options.AdminTokenSha256 is { } a ? [a] : Array.Empty<string>()];

    bool IsToken(string hash) => _tokenHashes.Contains(hash) || raters.IsTokenHash(hash);

    public async Task InvokeAsync(HttpContext ctx)
    {
        long start = Stopwatch.GetTimestamp();
        Exception? failure = null;
        try
        {
            await next(ctx);
            if (!ctx.Response.HasStarted && ctx.Response.StatusCode is 404 or 405) await WriteRouteError(ctx);
        }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            (int status, string message) = e switch
            {
                BadRequest b => (400, b.Message),
                HttpStatusException h => (h.Status, h.Message),
                BadHttpRequestException h => (h.StatusCode, "bad request"),
                OperationCanceledException when ctx.RequestAborted.IsCancellationRequested => (499, "client went away"),
                _ => (500, "internal error"),
            };
            if (status >= 500) failure = e;
            ctx.Response.Clear();
            ctx.Response.StatusCode = status;
            if (status != 499) await ctx.Response.WriteAsJsonAsync(new { error = message });
        }
        catch (Exception e)
        {
            // Part of the answer is already on the wire: cut the connection so the client cannot take it as whole.
            failure = e;
            ctx.Abort();
        }
        Log(ctx, Stopwatch.GetElapsedTime(start), failure);
    }

    void Log(HttpContext ctx, TimeSpan elapsed, Exception? failure)
    {
        int status = ctx.Response.StatusCode;
        var level = status >= 500 || failure is not null ? LogLevel.Error : LogLevel.Information;
        if (!_log.IsEnabled(level)) return;
        string caller = ctx.Items[FeedbackEndpoints.CallerItem] is FeedbackCaller c ? c.Name : "-";
        _log.Log(level, failure, "{Method} {Path} {Status} {ElapsedMs:0.0} ms {Caller}",
            ctx.Request.Method, SafePath(ctx.Request.Path), status, elapsed.TotalMilliseconds, caller);
    }

    /// <summary>The path as sent (escaped, so no control characters), with any segment that is a configured token, or its hash, masked.</summary>
    string SafePath(PathString path)
    {
        string[] segments = path.ToUriComponent().Split('/');
        for (int i = 0; i < segments.Length; i++)
        {
            string segment = Uri.UnescapeDataString(segments[i]);
            if (segment.Length > 0 && (IsToken(RaterTokens.Hash(segment)) || IsToken(segment.ToLowerInvariant())))
                segments[i] = "[token]";
        }
        return string.Join('/', segments);
    }

    static Task WriteRouteError(HttpContext ctx)
    {
        string message = ctx.Response.StatusCode == 404
            ? "no such route"
            : $"method {ctx.Request.Method} is not allowed here (allowed: {ctx.Response.Headers.Allow})";
        return ctx.Response.WriteAsJsonAsync(new { error = message });
    }
}
