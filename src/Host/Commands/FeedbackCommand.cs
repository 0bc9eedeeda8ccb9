using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Rlft.Actors.Configuration;
using Rlft.Actors.Feedback;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft feedback --config FILE [--db PATH] [--urls URLS] [--log-level LEVEL]`: a feedback node (the persistent
/// feedback actor, the rater page, the admin page and the API) until Ctrl+C or SIGTERM. Prints one line with the bound address once
/// it is serving; logs one console line per request (Information) and each failure (Error, with its exception).
/// </summary>
internal static class FeedbackCommand
{
    static readonly string[] Levels = ["debug", "information", "warning", "error", "none"];

    /// <summary>
    /// Single-line console logs at <paramref name="level"/>, warnings and errors on standard error; the host's own
    /// start-up lines stay below Warning (the command prints where it listens).
    /// </summary>
    public static Action<ILoggingBuilder> ConsoleLogging(LogLevel level) => logging => logging
        .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Warning)
        .AddSimpleConsole(f => { f.SingleLine = true; f.TimestampFormat = "HH:mm:ss "; })
        .AddFilter("Microsoft", LogLevel.Warning)
        .SetMinimumLevel(level);

    public static Command Create()
    {
        var config = new Option<FileInfo>("--config") { Description = "HOCON file with an rlft.feedback section (see hocon/feedback.conf).", Required = true };
        var db = new Option<string?>("--db") { Description = "SQLite journal file (overrides rlft.feedback.journal)." };
        var urls = new Option<string?>("--urls") { Description = "Addresses to listen on, separated by ';' (port 0 picks a free port); overrides rlft.feedback.urls (default http://127.0.0.1:5080)." };
        var logLevel = new Option<string>("--log-level")
        {
            Description = $"Console log level: {string.Join(", ", Levels)} (information: one line per request).",
            DefaultValueFactory = _ => "information",
        };
        var otlp = OtlpExport.Option();
        var command = new Command("feedback", "Run a feedback node: human raters rate items through a web page and an HTTP API.") { config, db, urls, logLevel, otlp };
        command.SetAction(async (result, ct) =>
        {
            var o = result.InvocationConfiguration.Output;
            using var telemetry = OtlpExport.Start(result.GetValue(otlp), "rlft-feedback", web: true);
            string levelName = result.GetValue(logLevel)!.ToLowerInvariant();
            if (!Levels.Contains(levelName)) throw new CliException($"--log-level: '{levelName}' is not one of {string.Join(", ", Levels)}");
            var level = Enum.Parse<LogLevel>(levelName, ignoreCase: true);
            var options = FeedbackOptions.FromConfig(RlftConfig.LoadFile(result.GetValue(config)!.FullName));
            if (result.GetValue(db) is { } path) options = options with { Journal = Path.GetFullPath(path) };
            if (result.GetValue(urls) is { } given)
            {
                var list = given.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (list.Length == 0) throw new CliException("--urls: no address given");
                options = options with { Urls = list };
            }
            // Raters can also be added at runtime through the admin API (they live in the journal), so the admin token suffices.
            if (options.Raters.Count == 0 && options.AdminTokenSha256 is null)
                throw new CliException("rlft.feedback.raters: no raters configured (issue a token with 'rlft feedback-token --rater NAME', or set admin-token-sha256 and add raters on the admin page)");
            await using var app = FeedbackNode.Build(options, options.Urls, ConsoleLogging(level));
            await FeedbackNode.StartAsync(app, ct);
            int active = options.Raters.Count(r => !r.Revoked);
            o.WriteLine($"feedback node listening on {string.Join(", ", app.Urls)} (journal {options.Journal}, {active} rater{(active == 1 ? "" : "s")} in the config)");
            o.Flush();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException) { }
            await app.StopAsync(CancellationToken.None);
            return 0;
        });
        return command;
    }
}

/// <summary>`rlft feedback-token --rater NAME | --admin`: a new bearer token and the config line holding only its hash.</summary>
internal static class FeedbackTokenCommand
{
    public static Command Create()
    {
        var rater = new Option<string?>("--rater") { Description = "The rater the token identifies (ratings are stored under this name)." };
        var admin = new Option<bool>("--admin") { Description = "Issue the admin token (enqueues items through /api/v1/admin)." };
        var command = new Command("feedback-token", "Issue a bearer token for a rater (or the admin) and print the line for the feedback config.") { rater, admin };
        command.SetAction(result =>
        {
            var o = result.InvocationConfiguration.Output;
            string? name = result.GetValue(rater);
            bool isAdmin = result.GetValue(admin);
            if ((name is null) == !isAdmin) throw new CliException("give exactly one of --rater NAME or --admin");
            if (name is not null && !FeedbackItem.IsValidId(name)) throw new CliException($"--rater: '{name}' is not a valid name (1-128 characters of A-Z a-z 0-9 . _ : -)");
            string token = RaterTokens.NewToken();
            o.WriteLine($"token: {token}");
            o.WriteLine(isAdmin
                ? $"config: admin-token-sha256 = \"{RaterTokens.Hash(token)}\""
                : $"config: {RaterTokens.ConfigLine(name!, token)}");
            o.WriteLine("The token is shown only now; the config keeps only its SHA-256.");
            return 0;
        });
        return command;
    }
}

/// <summary>
/// `rlft simulate-raters --url URL --token T [--token T…] [--rule positive|word:W]`: HTTP clients that rate
/// whatever the feedback endpoint hands them by a hidden rule, until Ctrl+C (or --ratings each), so a job whose
/// rewards come from people can run end to end without any.
/// </summary>
internal static class SimulateRatersCommand
{
    public static Command Create()
    {
        var url = new Option<string>("--url") { Description = "The feedback endpoint, e.g. http://127.0.0.1:5081", Required = true };
        var tokens = new Option<string[]>("--token") { Description = "A rater's bearer token; one simulated rater per token (repeatable)", Required = true };
        var rule = new Option<string>("--rule") { Description = "The hidden rule: positive (likes positive words) or word:WORD", DefaultValueFactory = _ => "positive" };
        var ratings = new Option<int>("--ratings") { Description = "Stop after this many stored ratings per rater (0: until Ctrl+C)", DefaultValueFactory = _ => 0 };
        var command = new Command("simulate-raters", "Rate items on a feedback endpoint by a hidden rule (stand-ins for people).") { url, tokens, rule, ratings };
        command.SetAction(async (result, ct) =>
        {
            var o = result.InvocationConfiguration.Output;
            if (!Uri.TryCreate(result.GetValue(url), UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("http" or "https"))
                throw new CliException($"--url: '{result.GetValue(url)}' is not an http(s) address");
            HiddenRule hidden;
            try { hidden = HiddenRule.Parse(result.GetValue(rule)!); }
            catch (ArgumentException e) { throw new CliException($"--rule: {e.Message.Split(" (Parameter")[0]}"); }
            int max = result.GetValue(ratings);
            if (max < 0) throw new CliException($"--ratings: must be 0 or more, got {max}");
            using var http = new HttpClient { BaseAddress = baseUri };
            int stored = 0;
            var raters = result.GetValue(tokens)!.Select(t => new SimulatedRater(new FeedbackClient(http, t), hidden).RunAsync(
                max == 0 ? int.MaxValue : max, TimeSpan.FromMilliseconds(100), (r, _) =>
                {
                    if (r.Status == System.Net.HttpStatusCode.Created && Interlocked.Increment(ref stored) % 100 == 0)
                        o.WriteLine($"simulate-raters: {stored} ratings stored");
                    else if (r.Status is System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden)
                        throw new CliException($"--token: the endpoint refused a token ({(int)r.Status} {r.Error})");
                }, ct)).ToList();
            o.WriteLine($"simulate-raters: {raters.Count} rater{(raters.Count == 1 ? "" : "s")} rating by rule '{hidden.Name}' at {baseUri}");
            try { await Task.WhenAll(raters); }
            catch (OperationCanceledException) { }
            catch (HttpRequestException e) when (e.StatusCode is System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden)
            {
                throw new CliException($"--token: the endpoint refused a token ({e.Message})");
            }
            catch (HttpRequestException e) when (e.StatusCode is null)
            {
                throw new CliException($"--url: cannot reach {baseUri} ({e.Message})");
            }
            o.WriteLine($"simulate-raters: {stored} ratings stored");
            return 0;
        });
        return command;
    }
}
