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
internal static class FeedbackNode
{
    /// <summary>
    /// Builds (does not start) the web application; after StartAsync, <c>app.Urls</c> holds the bound addresses.
    /// <paramref name="logging"/> adds the log providers and levels (none: nothing is logged through
    /// Microsoft.Extensions.Logging, and Akka's warnings go to its own console logger); with it, Akka logs there too.
    /// </summary>
    public static WebApplication Build(FeedbackOptions options, IEnumerable<string> urls, Action<ILoggingBuilder>? logging = null, string? akkaHocon = null,
        TimeProvider? clock = null)
    {
        var builder = CreateBuilder(options, urls);
        logging?.Invoke(builder.Logging);
        builder.Services.AddAkka("rlft-feedback", (akka, _) =>
        {
            akka.ConfigureLoggers(l =>
            {
                l.LogLevel = Akka.Event.LogLevel.WarningLevel;
                if (logging is null) return;
                l.ClearLoggers();
                l.AddLoggerFactory();
            });
            // An unbound type is an error, never a silent Newtonsoft fallback (journal payloads included).
            akka.WithStrictSerialization();
            akka.WithFeedback(options, clock);
            if (akkaHocon is not null) akka.AddHocon(akkaHocon, HoconAddMode.Prepend);
        });
        var app = builder.Build();
        UseFeedback(app, options);
        return app;
    }

    /// <summary>
    /// The web half of a feedback node: Kestrel on <paramref name="urls"/> with its limits, JSON options and the
    /// per-rater rate limiter, and no log provider. The caller adds providers (a job node adds its own, so the
    /// endpoint's request log joins the job's log), the actor system (with <see cref="WithFeedback"/>), builds, and
    /// calls <see cref="UseFeedback"/>.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(FeedbackOptions options, IEnumerable<string> urls)
    {
        var builder = WebApplication.CreateBuilder(Runtime.OwnHosts.Web(Environments.Production, typeof(FeedbackNode).Assembly.GetName().Name));
        builder.Logging.ClearProviders();
        // ASP.NET Core's own request lines would repeat ours, and below Warning Kestrel logs rejected request lines and
        // headers verbatim (an Authorization header included): its categories stay at Warning whatever the level.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // A host that cannot start (an address in use) throws to the caller, which says so in one line (StartAsync):
        // the host's own error line with the stack trace would say it twice.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        builder.WebHost.UseUrls([.. urls]);
        builder.WebHost.UseSetting(WebHostDefaults.PreventHostingStartupKey, "true");
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
        });
        AddFeedbackServices(builder.Services, options);
        return builder;
    }

    /// <summary>
    /// The services the rater page and API read: the options, the rater registry, the JSON options and the per-rater
    /// rate limiter (a node's builder, or a program's own ASP.NET Core app through <c>AddRlftFeedback</c>).
    /// </summary>
    internal static void AddFeedbackServices(IServiceCollection services, FeedbackOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(new RaterRegistry(options.Raters));
        // The default encoder escapes < > & ' in JSON strings, so texts stay inert even if a client mishandles them.
        services.ConfigureHttpJsonOptions(j => j.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.Default);
        services.AddRateLimiter(r =>
        {
            r.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            r.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(ctx =>
                ctx.Items[FeedbackEndpoints.CallerItem] is FeedbackCaller { IsAdmin: false } rater
                    ? RateLimitPartition.GetTokenBucketLimiter(rater.Name, _ => new TokenBucketRateLimiterOptions
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
    }

    /// <summary>Starts a feedback web application; an address it cannot bind is a configuration error naming rlft.feedback.urls.</summary>
    public static async Task StartAsync(WebApplication app, CancellationToken ct)
    {
        try { await app.StartAsync(ct); }
        catch (IOException e) { throw new Configuration.ConfigException($"rlft.feedback.urls: cannot listen ({e.Message})"); }
    }

    /// <summary>Errors as JSON and the request log, rater authentication, rate limiting, the rater page and the API.</summary>
    public static void UseFeedback(WebApplication app, FeedbackOptions options)
    {
        app.UseMiddleware<RequestLogMiddleware>(options);
        app.UseMiddleware<RaterAuthMiddleware>(options);
        app.UseRateLimiter();
        app.MapFeedbackEndpoints(options);
    }

    /// <summary>Adds the serializer binding, the SQLite journal and the feedback actor (registered as <see cref="FeedbackActor"/>).</summary>
    public static AkkaConfigurationBuilder WithFeedback(this AkkaConfigurationBuilder akka, FeedbackOptions options, TimeProvider? clock = null)
    {
        PrepareJournal(options.Journal);
        var settings = FeedbackActorSettings.Default with
        {
            Lease = options.Lease,
            TickInterval = options.Tick,
            SnapshotEvery = options.SnapshotEvery,
            UndoWindow = options.UndoWindow,
            CloseAfterFlags = options.CloseAfterFlags,
            Raters = options.Raters,
            Guidelines = options.Guidelines,
        };
        return akka
            .AddHocon(FeedbackSerializer.Hocon, HoconAddMode.Prepend)
            .WithSqlPersistence(
                connectionString: $"Data Source={options.Journal}",
                providerName: LinqToDB.ProviderName.SQLiteMS,
                autoInitialize: true)
            .WithActors((system, registry, resolver) =>
            {
                // The web half (CreateBuilder) registered the registry its auth check reads; the actor keeps it current.
                var raters = resolver.GetService<RaterRegistry>();
                registry.Register<FeedbackActor>(system.ActorOf(FeedbackActor.Props(settings with { Registry = raters }, clock), "feedback"));
            });
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
}
