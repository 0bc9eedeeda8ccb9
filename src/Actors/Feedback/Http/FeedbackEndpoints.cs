using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Rlft.Reward.Ratings;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// The feedback HTTP API (the contract in DESIGN.md, "Human feedback endpoint", and its extensions in the README).
/// Handlers parse and validate, ask the feedback actor, and map its answer to a status; the rater id always comes
/// from the bearer token. The admin's routes are in FeedbackAdminEndpoints.cs.
/// </summary>
internal static partial class FeedbackEndpoints
{
    /// <summary>The <see cref="HttpContext.Items"/> key of the request's <see cref="FeedbackCaller"/>.</summary>
    public const string CallerItem = "rlft.caller";
    static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);
    static readonly JsonSerializerOptions Json = FeedbackJson.Web;

    public static void MapFeedbackEndpoints(this IEndpointRouteBuilder app, FeedbackOptions options)
    {
        MapPage(app, "/", RaterPage.Load("rater.html"));
        MapPage(app, "/admin", RaterPage.Load("admin.html"));

        app.MapGet("/healthz", async (IRequiredActor<FeedbackActor> actor) =>
            await Ask<RaterStats>(actor, new GetRaterStats("")) is not null
                ? Results.Json(new { status = "ok" })
                : Results.Json(new { status = "unavailable" }, statusCode: 503));

        var api = app.MapGroup("/api/v1");

        api.MapGet("/tasks/next", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
            await Ask<object>(actor, new NextTask(Rater(ctx))) switch
            {
                TaskOffer o => Results.Json(TaskJson.Task(o)),
                NoTask => Results.NoContent(),
                _ => Unavailable(),
            }).Needs(FeedbackAccess.Rater);

        api.MapPost("/ratings", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            var cmd = RequestParsing.ParseRating(await JsonBody.ReadAsync(ctx, options.MaxRequestBytes), Rater(ctx));
            return await Ask<object>(actor, cmd) switch
            {
                RatingAccepted a => Results.Json(new { ratingId = a.RatingId }, statusCode: 201),
                RatingRejected r => Rejected(r),
                _ => Unavailable(),
            };
        }).Needs(FeedbackAccess.Rater);

        // Skip: the item goes to someone else. Flag: the same, and the admin sees it (and why) in the overview.
        foreach (var (route, broken) in new[] { ("/skips", false), ("/flags", true) })
            api.MapPost(route, async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
            {
                var cmd = RequestParsing.ParseSetAside(await JsonBody.ReadAsync(ctx, options.MaxRequestBytes), Rater(ctx), broken);
                return await Ask<object>(actor, cmd) switch
                {
                    TaskSetAside s => Results.Json(new { taskId = s.TaskId, kind = s.Broken ? "broken" : "skip" }, statusCode: s.Duplicate ? 200 : 201),
                    RatingRejected r => Rejected(r),
                    _ => Unavailable(),
                };
            }).Needs(FeedbackAccess.Rater);

        api.MapPost("/undo", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            var cmd = RequestParsing.ParseUndo(await JsonBody.ReadOptionalAsync(ctx, options.MaxRequestBytes), Rater(ctx));
            return await Ask<object>(actor, cmd) switch
            {
                UndoAccepted u => Results.Json(new { ratingId = u.RatingId, taskId = u.TaskId }),
                RatingRejected r => Rejected(r),
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

        // ?since=<Unix ms> is the start of the rater's day (their time zone is theirs); default midnight UTC.
        api.MapGet("/me", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            long since = Since(ctx.Request.Query["since"].ToString(), now);
            return await Ask<RaterProgress>(actor, new GetRaterProgress(Rater(ctx), since)) is { } p
                ? Results.Json(TaskJson.Progress(p, options.UndoWindow))
                : Unavailable();
        }).Needs(FeedbackAccess.Rater);

        api.MapGet("/guidelines", async (IRequiredActor<FeedbackActor> actor) =>
            await Ask<GuidelineList>(actor, GetGuidelines.Instance) is { } list
                ? Results.Json(new { guidelines = list.Versions.GroupBy(v => v.Name).Select(g => TaskJson.Guideline(g.Last())) })
                : Unavailable()).Needs(FeedbackAccess.Any);

        // Every rater's answers and every prompt: the admin's only.
        api.MapGet("/export", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            var q = ctx.Request.Query;
            string format = q["format"].ToString();
            if (format is not ("preferences" or "scores" or "set-aside")) return Error(400, "format: expected preferences, scores or set-aside");
            var weighting = new PreferenceWeighting { Ties = TieParam(q["ties"].ToString(), "ties"), BothBad = TieParam(q["both-bad"].ToString(), "both-bad") };
            if (await Ask<ExportData>(actor, GetExport.Instance) is not { } data) return Unavailable();
            var lines = format switch
            {
                "preferences" => FeedbackExport.Preferences(data, weighting),
                "scores" => FeedbackExport.Scores(data),
                _ => FeedbackExport.SetAside(data),
            };
            return Results.Text(string.Join("", lines.Select(l => l + "\n")), "application/x-ndjson; charset=utf-8", Encoding.UTF8);
        }).Needs(FeedbackAccess.Admin);

        MapAdmin(api.MapGroup("/admin").Needs(FeedbackAccess.Admin), options);
    }

    static void MapPage(IEndpointRouteBuilder app, string path, RaterPage page) =>
        app.MapGet(path, (HttpContext ctx) =>
        {
            ctx.Response.Headers.ContentSecurityPolicy = page.ContentSecurityPolicy;
            ctx.Response.Headers["Referrer-Policy"] = "no-referrer";
            ctx.Response.Headers["X-Frame-Options"] = "DENY";
            ctx.Response.Headers["X-Content-Type-Options"] = "nosniff";
            return Results.Text(page.Html, "text/html; charset=utf-8");
        });

    static TieHandling TieParam(string value, string name) => value switch
    {
        "" or "drop" => TieHandling.Drop,
        "half" => TieHandling.Half,
        _ => throw new BadRequest($"{name}: expected drop or half"),
    };

    static long Since(string value, long now)
    {
        if (value.Length == 0) return now - now % 86_400_000;
        const long week = 7 * 86_400_000L;
        return long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long ms) && ms >= now - week && ms <= now + 86_400_000
            ? ms : throw new BadRequest("since: expected Unix milliseconds within the last week (the start of your day)");
    }

    static TBuilder Needs<TBuilder>(this TBuilder builder, FeedbackAccess access) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new FeedbackAccessMetadata(access));

    static FeedbackCaller Caller(HttpContext ctx) => (FeedbackCaller)ctx.Items[CallerItem]!;

    static string Rater(HttpContext ctx) => Caller(ctx).Name;

    public static string Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    public static IResult Error(int status, string message) => Results.Json(new { error = message }, Json, statusCode: status);

    static IResult Rejected(RatingRejected r) => Error(r.Code switch
    {
        RejectionCode.Invalid => 400,
        RejectionCode.UnknownTask or RejectionCode.UnknownRater => 404,
        RejectionCode.NotLeased => 403,
        _ => 409,
    }, r.Message);

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
internal sealed class HttpStatusException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
