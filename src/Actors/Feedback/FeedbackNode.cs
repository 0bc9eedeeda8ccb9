using System.Threading.RateLimiting;
using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rlft.Actors.Feedback.Http;

namespace Rlft.Actors.Feedback;

/// <summary>
/// The feedback node: one process holding the actor system (with the persistent feedback actor on a SQLite
/// journal) and Kestrel serving the rater page and API. <see cref="WithFeedback"/> is the reusable part for a
/// cluster node that takes the <c>feedback</c> role alongside others.
/// </summary>
public static class FeedbackNode
{
    /// <summary>Builds (does not start) the web application; after StartAsync, <c>app.Urls</c> holds the bound addresses.</summary>
    public static WebApplication Build(FeedbackOptions options, IEnumerable<string> urls, ILoggerProvider? logger = null, string? akkaHocon = null)
    {
        var builder = CreateBuilder(options, urls, logger);
        builder.Services.AddAkka("rlft-feedback", (akka, _) =>
        {
            akka.ConfigureLoggers(l => l.LogLevel = Akka.Event.LogLevel.WarningLevel);
            // An unbound type is an error, never a silent Newtonsoft fallback (journal payloads included).
            akka.WithStrictSerialization();
            akka.WithFeedback(options);
            if (akkaHocon is not null) akka.AddHocon(akkaHocon, HoconAddMode.Prepend);
        });
        var app = builder.Build();
        UseFeedback(app, options);
        return app;
    }

    /// <summary>
    /// The web half of a feedback node: Kestrel on <paramref name="urls"/> with its limits, JSON options and the
    /// per-rater rate limiter. The caller adds the actor system (with <see cref="WithFeedback"/>), builds, and calls
    /// <see cref="UseFeedback"/>.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(FeedbackOptions options, IEnumerable<string> urls, ILoggerProvider? logger = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            EnvironmentName = Environments.Production,
            ApplicationName = typeof(FeedbackNode).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        if (logger is not null) builder.Logging.AddProvider(logger).SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls([.. urls]);
        builder.WebHost.UseSetting(WebHostDefaults.PreventHostingStartupKey, "true");
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
        });
        builder.Services.AddSingleton(options);
        // The default encoder escapes < > & ' in JSON strings, so texts stay inert even if a client mishandles them.
        builder.Services.ConfigureHttpJsonOptions(j => j.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.Default);
        builder.Services.AddRateLimiter(r =>
        {
            r.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            r.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(ctx =>
                ctx.Items[FeedbackEndpoints.RaterItem] is string rater && rater != "admin"
                    ? RateLimitPartition.GetTokenBucketLimiter(rater, _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = options.RateBurst,
                        TokensPerPeriod = options.RatePerSecond,
                        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    })
                    : RateLimitPartition.GetNoLimiter(""));
            r.OnRejected = (ctx, ct) =>
            {
                ctx.HttpContext.Response.Headers.RetryAfter = "1";
                return new ValueTask(ctx.HttpContext.Response.WriteAsJsonAsync(new { error = "too many requests for this rater; slow down" }, ct));
            };
        });
        return builder;
    }

    /// <summary>Starts a feedback web application; an address it cannot bind is a configuration error naming rlft.feedback.urls.</summary>
    public static async Task StartAsync(WebApplication app, CancellationToken ct)
    {
        try { await app.StartAsync(ct); }
        catch (IOException e) { throw new Configuration.ConfigException($"rlft.feedback.urls: cannot listen ({e.Message})"); }
    }

    /// <summary>Errors as JSON, rater authentication, rate limiting, the rater page and the API.</summary>
    public static void UseFeedback(WebApplication app, FeedbackOptions options)
    {
        app.Use(ErrorsAsJson);
        app.UseMiddleware<RaterAuthMiddleware>(options);
        app.UseRateLimiter();
        app.MapFeedbackEndpoints(options);
    }

    /// <summary>Adds the serializer binding, the SQLite journal and the feedback actor (registered as <see cref="FeedbackActor"/>).</summary>
    public static AkkaConfigurationBuilder WithFeedback(this AkkaConfigurationBuilder akka, FeedbackOptions options)
    {
        PrepareJournal(options.Journal);
        var settings = FeedbackActorSettings.Default with { Lease = options.Lease, TickInterval = options.Tick, SnapshotEvery = options.SnapshotEvery };
        return akka
            .AddHocon(FeedbackSerializer.Hocon, HoconAddMode.Prepend)
            .WithSqlPersistence(
                connectionString: $"Data Source={options.Journal}",
                providerName: LinqToDB.ProviderName.SQLiteMS,
                autoInitialize: true)
            .WithActors((system, registry) =>
                registry.Register<FeedbackActor>(system.ActorOf(FeedbackActor.Props(settings), "feedback")));
    }

    /// <summary>
    /// Creates the folder and switches the file to WAL: commits stay durable (synchronous=FULL) but appends no
    /// longer rewrite a rollback journal, and readers never block the writer.
    /// </summary>
    static void PrepareJournal(string path)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var connection = new SqliteConnection($"Data Source={path}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL;";
        command.ExecuteNonQuery();
    }

    /// <summary>Refusals become <c>{"error": "..."}</c> with their status; anything unexpected is a bare 500, never a stack trace.</summary>
    static async Task ErrorsAsJson(HttpContext ctx, RequestDelegate next)
    {
        try
        {
            await next(ctx);
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
            if (status == 500)
                ctx.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("rlft.feedback").LogError(e, "feedback request failed");
            ctx.Response.Clear();
            ctx.Response.StatusCode = status;
            await ctx.Response.WriteAsJsonAsync(new { error = message });
        }
    }
}
