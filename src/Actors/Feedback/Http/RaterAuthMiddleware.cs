using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace Rlft.Actors.Feedback.Http;

/// <summary>Who may call an endpoint: a rater's token, the admin token, or either.</summary>
public enum FeedbackAccess { Rater, Admin, Any }

/// <summary>The owner of the bearer token of a request: a rater by name, or the admin.</summary>
public sealed record FeedbackCaller(string Name, bool IsAdmin)
{
    public static readonly FeedbackCaller Admin = new("(admin)", true);
}

/// <summary>
/// Bearer-token check for <c>/api/v1</c>: 401 without a token or with one nobody owns, 403 for a revoked token, for a
/// rater's token on an admin endpoint (<c>/api/v1/admin/…</c>, <c>/api/v1/export</c>) and for the admin token on a
/// rater's endpoint (it rates nothing). What an endpoint needs is its <see cref="FeedbackAccess"/> metadata (routing
/// has run, so a trailing slash or another letter case finds the same endpoint); an unmatched path under
/// <c>/api/v1/admin</c> needs the admin token, any other unmatched path any token (then 404 or 405).
/// Tokens are compared by their SHA-256, the only form kept; on success the caller is put in
/// <see cref="HttpContext.Items"/> for the rate limiter, the request log and the handlers. Nothing here is logged.
/// </summary>
public sealed class RaterAuthMiddleware(RequestDelegate next, FeedbackOptions options)
{
    readonly Dictionary<string, RaterEntry> _byHash = options.Raters.ToDictionary(r => r.TokenSha256, StringComparer.Ordinal);
    readonly byte[]? _admin = options.AdminTokenSha256 is { } a ? Convert.FromHexString(a) : null;

    public Task InvokeAsync(HttpContext ctx)
    {
        if (!ctx.Request.Path.StartsWithSegments("/api/v1")) return next(ctx);
        string header = ctx.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7 || header.Length > 512)
            return Deny(ctx, 401, "missing bearer token (Authorization: Bearer <token>)");
        string hash = RaterTokens.Hash(header[7..].Trim());
        FeedbackCaller caller;
        RaterEntry? rater = null;
        if (_admin is not null && CryptographicOperations.FixedTimeEquals(_admin, Convert.FromHexString(hash))) caller = FeedbackCaller.Admin;
        else if (_byHash.TryGetValue(hash, out rater)) caller = new FeedbackCaller(rater.Name, false);
        else return Deny(ctx, 401, "unknown token");
        // Known from here on, refused or not: the request log names who it was.
        ctx.Items[FeedbackEndpoints.CallerItem] = caller;
        if (rater is { Revoked: true }) return Deny(ctx, 403, "this token has been revoked");

        var access = ctx.GetEndpoint()?.Metadata.GetMetadata<FeedbackAccessMetadata>()?.Access
            ?? (ctx.Request.Path.StartsWithSegments("/api/v1/admin") ? FeedbackAccess.Admin : FeedbackAccess.Any);
        if (access == FeedbackAccess.Admin && !caller.IsAdmin) return Deny(ctx, 403, "this route needs the admin token");
        if (access == FeedbackAccess.Rater && caller.IsAdmin) return Deny(ctx, 403, "the admin token rates nothing; this route needs a rater token");
        return next(ctx);
    }

    static Task Deny(HttpContext ctx, int status, string message)
    {
        if (status == 401) ctx.Response.Headers.WWWAuthenticate = "Bearer";
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(new { error = message });
    }
}

/// <summary>Endpoint metadata: the <see cref="FeedbackAccess"/> an endpoint needs.</summary>
public sealed record FeedbackAccessMetadata(FeedbackAccess Access);
