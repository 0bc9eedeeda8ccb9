using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// The feedback HTTP API (the contract in DESIGN.md, "Human feedback endpoint"). Handlers parse and validate,
/// ask the feedback actor, and map its answer to a status; the rater id always comes from the bearer token.
/// </summary>
public static class FeedbackEndpoints
{
    /// <summary>The <see cref="HttpContext.Items"/> key of the request's <see cref="FeedbackCaller"/>.</summary>
    public const string CallerItem = "rlft.caller";
    static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static void MapFeedbackEndpoints(this IEndpointRouteBuilder app, FeedbackOptions options)
    {
        var page = RaterPage.Load();
        app.MapGet("/", (HttpContext ctx) =>
        {
            ctx.Response.Headers.ContentSecurityPolicy = page.ContentSecurityPolicy;
            ctx.Response.Headers["Referrer-Policy"] = "no-referrer";
            ctx.Response.Headers["X-Frame-Options"] = "DENY";
            return Results.Text(page.Html, "text/html; charset=utf-8");
        });

        app.MapGet("/healthz", async (IRequiredActor<FeedbackActor> actor) =>
            await Ask<RaterStats>(actor, new GetRaterStats("")) is not null
                ? Results.Json(new { status = "ok" })
                : Results.Json(new { status = "unavailable" }, statusCode: 503));

        var api = app.MapGroup("/api/v1");

        api.MapGet("/tasks/next", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
            await Ask<object>(actor, new NextTask(Rater(ctx))) switch
            {
                TaskOffer o => Results.Json(new
                {
                    taskId = o.Item.Id,
                    kind = o.Item.Kind == FeedbackKind.Compare ? "compare" : "score",
                    prompt = o.Item.Prompt,
                    completions = o.Item.Completions.Select(c => new { id = c.Id, text = c.Text }),
                    leaseExpiresAt = Time(o.LeaseExpiresAtMs),
                }),
                NoTask => Results.NoContent(),
                _ => Unavailable(),
            }).Needs(FeedbackAccess.Rater);

        api.MapPost("/ratings", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            var body = await JsonBody.ReadAsync(ctx, options.MaxRequestBytes);
            var cmd = RequestParsing.ParseRating(body, Rater(ctx));
            return await Ask<object>(actor, cmd) switch
            {
                RatingAccepted a => Results.Json(new { ratingId = a.RatingId }, statusCode: 201),
                RatingRejected r => Error(r.Code switch
                {
                    RejectionCode.Invalid => 400,
                    RejectionCode.UnknownTask => 404,
                    RejectionCode.NotLeased => 403,
                    _ => 409,
                }, r.Message),
                _ => Unavailable(),
            };
        }).Needs(FeedbackAccess.Rater);

        // Raters see the aggregates and their own count; the admin sees every rater's count (same keys).
        api.MapGet("/stats", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            if (await Ask<FeedbackStats>(actor, GetStats.Instance) is not { } s) return Unavailable();
            var caller = Caller(ctx);
            IReadOnlyDictionary<string, int> raters = caller.IsAdmin ? s.PerRater
                : new Dictionary<string, int> { [caller.Name] = s.PerRater.GetValueOrDefault(caller.Name) };
            return Results.Json(new
            {
                pending = s.Pending,
                rated = s.Rated,
                timedOut = s.TimedOut,
                ratings = s.Ratings,
                activeRaters = s.PerRater.Count(r => r.Value > 0),
                raters,
                agreement = new { compare = s.CompareAgreement, score = s.ScoreAgreement, method = "krippendorff-alpha" },
            });
        }).Needs(FeedbackAccess.Any);

        api.MapGet("/me", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
            await Ask<RaterStats>(actor, new GetRaterStats(Rater(ctx))) is { } s
                ? Results.Json(new { rater = s.Rater, rated = s.Rated, pending = s.Pending })
                : Unavailable()).Needs(FeedbackAccess.Rater);

        // Every rater's answers and every prompt: the admin's only.
        api.MapGet("/export", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            string format = ctx.Request.Query["format"].ToString();
            if (format is not ("preferences" or "scores")) return Error(400, "format: expected preferences or scores");
            if (await Ask<ExportData>(actor, GetExport.Instance) is not { } data) return Unavailable();
            var lines = format == "preferences" ? FeedbackExport.Preferences(data) : FeedbackExport.Scores(data);
            return Results.Text(string.Join("", lines.Select(l => l + "\n")), "application/x-ndjson; charset=utf-8", Encoding.UTF8);
        }).Needs(FeedbackAccess.Admin);

        var admin = api.MapGroup("/admin").Needs(FeedbackAccess.Admin);
        admin.MapPost("/items", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            var items = RequestParsing.ParseItems(await JsonBody.ReadAsync(ctx, options.MaxRequestBytes), options);
            return await Ask<object>(actor, new EnqueueItems(items)) switch
            {
                ItemsEnqueued e => Results.Json(new { ids = e.Ids, added = e.Added }, statusCode: 201),
                EnqueueRejected r => Error(400, r.Reason),
                _ => Unavailable(),
            };
        });
        // Every rating with its ids; ?items=a,b narrows to those items (a producer polling for its batch).
        admin.MapGet("/ratings", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            string filter = ctx.Request.Query["items"].ToString();
            var ids = filter.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (ids.FirstOrDefault(id => !FeedbackItem.IsValidId(id)) is { } bad) return Error(400, $"items: '{bad}' is not an item id");
            var data = ids.Length == 0
                ? await Ask<ExportData>(actor, GetExport.Instance)
                : await Ask<ItemRatings>(actor, new GetItemRatings(ids)) is { } found ? new ExportData([], found.Ratings, new Dictionary<string, ResolutionOutcome>()) : null;
            return data is null ? Unavailable()
                : Results.Text(string.Join("", FeedbackExport.Ratings(data).Select(l => l + "\n")), "application/x-ndjson; charset=utf-8", Encoding.UTF8);
        });
    }

    static TBuilder Needs<TBuilder>(this TBuilder builder, FeedbackAccess access) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new FeedbackAccessMetadata(access));

    static FeedbackCaller Caller(HttpContext ctx) => (FeedbackCaller)ctx.Items[CallerItem]!;

    static string Rater(HttpContext ctx) => Caller(ctx).Name;

    public static string Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    public static IResult Error(int status, string message) => Results.Json(new { error = message }, Json, statusCode: status);

    static IResult Unavailable() => Error(503, "the feedback store did not answer in time; nothing was confirmed, retry");

    static async Task<T?> Ask<T>(IRequiredActor<FeedbackActor> actor, object message) where T : class
    {
        try
        {
            return await actor.ActorRef.Ask<T>(message, AskTimeout);
        }
        catch (AskTimeoutException)
        {
            return null;
        }
    }
}

/// <summary>A request refused with a specific status and message (the error middleware writes it).</summary>
public sealed class HttpStatusException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
