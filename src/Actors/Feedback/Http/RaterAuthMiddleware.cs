using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace Rlft.Actors.Feedback.Http;

/// <summary>Who may call an endpoint: a rater's token, the admin token, or either.</summary>
internal enum FeedbackAccess { Rater, Admin, Any }

/// <summary>The owner of the bearer token of a request: a rater by name, or the admin.</summary>
internal sealed record FeedbackCaller(string Name, bool IsAdmin)
{
    public static readonly FeedbackCaller Admin = new("(admin)", true);
}

/// <summary>
/// Bearer-token check for <c>/api/v1</c>: 401 without a token or with one nobody owns, 403 for a revoked token, for a
/// rater's token on an admin endpoint (<c>/api/v1/admin/…</c>, <c>/api/v1/export</c>) and for the admin token on a
/// rater's endpoint (it rates nothing). What an endpoint needs is its <see cref="FeedbackAccess"/> metadata (routing
/// has run, so a trailing slash or another letter case finds the same endpoint); an unmatched path under
/// <c>/api/v1/admin</c> needs the admin token, any other unmatched path any token (then 404 or 405).
/// Tokens are compared by their SHA-256, the only form kept; raters come from the <see cref="RaterRegistry"/> (the config,
/// then the journal: raters added or revoked through the admin API count from the next request on). On success the
/// caller is put in <see cref="HttpContext.Items"/> for the rate limiter, the request log and the handlers. Nothing
/// here is logged.
/// </summary>
internal sealed class RaterAuthMiddleware(RequestDelegate next, FeedbackOptions options, RaterRegistry raters)
{
    static readonly TimeSpan RecoveryWait = TimeSpan.FromSeconds(10);
    readonly byte[]? _admin = options.AdminTokenSha256 is { } a ? Convert.FromHexString(a) : null;

    public async Task InvokeAsync(HttpContext ctx)
    {
        if (!ctx.Request.Path.StartsWithSegments("/api/v1")) { await next(ctx); return; }
        string header = ctx.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7 || header.Length > 512)
        {
            await Deny(ctx, 401, "missing bearer token (Authorization: Bearer <token>)");
            return;
        }
        string hash = RaterTokens.Hash(header[7..].Trim());
        FeedbackCaller caller;
        RaterRegistry.Rater? rater = null;
        if (_admin is not null && CryptographicOperations.FixedTimeEquals(_admin, Convert.FromHexString(hash))) caller = FeedbackCaller.Admin;
        else if (await FindAsync(hash, ctx.RequestAborted) is { } found) (rater, caller) = (found, new FeedbackCaller(found.Name, false));
        else
        {
            await Deny(ctx, 401, "unknown token");
            return;
        }
        // Known from here on, refused or not: the request log names who it was.
        ctx.Items[FeedbackEndpoints.CallerItem] = caller;
        if (rater is { Revoked: true })
        {
            await Deny(ctx, 403, "this token has been revoked");
            return;
        }

        var access = ctx.GetEndpoint()?.Metadata.GetMetadata<FeedbackAccessMetadata>()?.Access
            ?? (ctx.Request.Path.StartsWithSegments("/api/v1/admin") ? FeedbackAccess.Admin : FeedbackAccess.Any);
        if (access == FeedbackAccess.Admin && !caller.IsAdmin) await Deny(ctx, 403, "this route needs the admin token");
        else if (access == FeedbackAccess.Rater && caller.IsAdmin) await Deny(ctx, 403, "the admin token rates nothing; this route needs a rater token");
        else await next(ctx);
    }

    /// <summary>The token's rater; a token unknown while the journal is still being read waits for it (raters added at runtime).</summary>
    async Task<RaterRegistry.Rater?> FindAsync(string hash, CancellationToken ct)
    {
        var found = raters.Find(hash);
        if (found is not null || raters.Loaded.IsCompleted) return found;
        try { await raters.Loaded.WaitAsync(RecoveryWait, ct); }
        catch (TimeoutException) { }
        return raters.Find(hash);
    }

    static Task Deny(HttpContext ctx, int status, string message)
    {
        if (status == 401) ctx.Response.Headers.WWWAuthenticate = "Bearer";
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(new { error = message });
    }
}

/// <summary>Endpoint metadata: the <see cref="FeedbackAccess"/> an endpoint needs.</summary>
internal sealed record FeedbackAccessMetadata(FeedbackAccess Access);
