using System.Text;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// The admin's API under <c>/api/v1/admin</c>: items (enqueue, list ratings, discard), guidelines (every version; a
/// new version), raters (add, revoke, new token: journal events, tokens shown once and kept as SHA-256), and the
/// overview the admin page shows. Every write is answered only once its event is durable.
/// </summary>
internal static partial class FeedbackEndpoints
{
    static void MapAdmin(RouteGroupBuilder admin, FeedbackOptions options)
    {
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

        admin.MapPost("/items/{id}/discard", async (HttpContext ctx, string id, IRequiredActor<FeedbackActor> actor) =>
        {
            string itemId = RequestParsing.RouteId(id, "item id");
            string reason = RequestParsing.ParseDiscard(await JsonBody.ReadOptionalAsync(ctx, options.MaxRequestBytes));
            return await Ask<object>(actor, new DiscardItem(itemId, reason)) switch
            {
                ItemDiscarded d => Results.Json(new { itemId = d.ItemId, outcome = "discarded" }),
                RatingRejected r => Rejected(r),
                _ => Unavailable(),
            };
        });

        admin.MapGet("/guidelines", async (IRequiredActor<FeedbackActor> actor) =>
            await Ask<GuidelineList>(actor, GetGuidelines.Instance) is { } list
                ? Results.Json(new
                {
                    guidelines = list.Versions.Select(v => new { name = v.Name, version = v.Version, markdown = v.Markdown, source = v.Source, updatedAt = Time(v.AtMs) }),
                })
                : Unavailable());

        admin.MapPut("/guidelines/{name}", async (HttpContext ctx, string name, IRequiredActor<FeedbackActor> actor) =>
        {
            var cmd = RequestParsing.ParseGuideline(await JsonBody.ReadAsync(ctx, options.MaxRequestBytes), name);
            return await Ask<GuidelineStored>(actor, cmd) is { } stored
                ? Results.Json(new { name = stored.Guideline.Name, version = stored.Guideline.Version, changed = stored.Changed })
                : Unavailable();
        });

        admin.MapPost("/raters", async (HttpContext ctx, IRequiredActor<FeedbackActor> actor) =>
        {
            string name = RequestParsing.ParseNewRater(await JsonBody.ReadAsync(ctx, options.MaxRequestBytes));
            string token = RaterTokens.NewToken();
            return await Ask<object>(actor, new ChangeRater(RaterChange.Add, name, RaterTokens.Hash(token))) switch
            {
                RaterChanged => Results.Json(new { name, token }, statusCode: 201),
                RatingRejected r => Rejected(r),
                _ => Unavailable(),
            };
        });

        admin.MapPost("/raters/{name}/revoke", async (HttpContext ctx, string name, IRequiredActor<FeedbackActor> actor) =>
        {
            string rater = RequestParsing.RouteId(name, "rater name");
            RequestParsing.Fields(await JsonBody.ReadOptionalAsync(ctx, options.MaxRequestBytes), "body", []);
            return await Ask<object>(actor, new ChangeRater(RaterChange.Revoke, rater, null)) switch
            {
                RaterChanged => Results.Json(new { name = rater, revoked = true }),
                RatingRejected r => Rejected(r),
                _ => Unavailable(),
            };
        });

        admin.MapPost("/raters/{name}/token", async (HttpContext ctx, string name, IRequiredActor<FeedbackActor> actor) =>
        {
            string rater = RequestParsing.RouteId(name, "rater name");
            RequestParsing.Fields(await JsonBody.ReadOptionalAsync(ctx, options.MaxRequestBytes), "body", []);
            string token = RaterTokens.NewToken();
            return await Ask<object>(actor, new ChangeRater(RaterChange.IssueToken, rater, RaterTokens.Hash(token))) switch
            {
                RaterChanged => Results.Json(new { name = rater, token }),
                RatingRejected r => Rejected(r),
                _ => Unavailable(),
            };
        });

        admin.MapGet("/overview", async (IRequiredActor<FeedbackActor> actor) =>
            await Ask<FeedbackOverview>(actor, GetOverview.Instance) is { } o ? Results.Json(OverviewJson(o)) : Unavailable());
    }

    static object OverviewJson(FeedbackOverview o) => new
    {
        at = Time(o.AtMs),
        pending = o.Pending,
        rated = o.Rated,
        timedOut = o.TimedOut,
        discarded = o.Discarded,
        ratings = o.Ratings,
        agreement = new { compare = o.CompareAlpha, score = o.ScoreAlpha, method = "krippendorff-alpha" },
        raters = o.Raters.Select(r => new
        {
            name = r.Name, source = r.Source, revoked = r.Revoked, rated = r.Rated, skipped = r.Skipped, flagged = r.Flagged, undone = r.Undone,
            first = r.FirstAtMs is { } f ? Time(f) : null, last = r.LastAtMs is { } l ? Time(l) : null, perHour = r.PerHour,
            agreement = new { compare = r.CompareAlpha, score = r.ScoreAlpha, shared = r.Shared, method = "krippendorff-alpha, this rater against each other rater" },
        }),
        hours = o.Hours.Select(h => new { hour = Time(h.HourMs), raters = h.PerRater, total = h.PerRater.Values.Sum() }),
        pairs = o.Pairs.Select(p => new { a = p.A, b = p.B, shared = p.SharedItems, compareKappa = p.CompareKappa, scoreKappa = p.ScoreKappa }),
        flagged = o.Flagged.Select(f => new
        {
            itemId = f.ItemId, prompt = f.Prompt, outcome = f.Outcome?.ToString().ToLowerInvariant(),
            flags = f.Flags.Select(x => new { rater = x.Rater, reason = x.Reason, time = Time(x.AtMs) }),
        }),
    };
}
