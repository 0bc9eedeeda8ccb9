using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// Bearer-token check for <c>/api/v1</c>: 401 without a token or with one nobody owns, 403 for a revoked token
/// (and for a rater token on the admin routes). Tokens are compared by their SHA-256, the only form kept.
/// On success the rater name is put in <see cref="HttpContext.Items"/> for the rate limiter and the handlers.
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
        bool adminRoute = ctx.Request.Path.StartsWithSegments("/api/v1/admin");
        if (adminRoute)
        {
            if (_admin is not null && CryptographicOperations.FixedTimeEquals(_admin, Convert.FromHexString(hash)))
            {
                ctx.Items[FeedbackEndpoints.RaterItem] = "admin";
                return next(ctx);
            }
            return _byHash.ContainsKey(hash) ? Deny(ctx, 403, "this token may not use the admin API") : Deny(ctx, 401, "unknown token");
        }
        if (!_byHash.TryGetValue(hash, out var rater)) return Deny(ctx, 401, "unknown token");
        if (rater.Revoked) return Deny(ctx, 403, "this token has been revoked");
        ctx.Items[FeedbackEndpoints.RaterItem] = rater.Name;
        return next(ctx);
    }

    static Task Deny(HttpContext ctx, int status, string message)
    {
        if (status == 401) ctx.Response.Headers.WWWAuthenticate = "Bearer";
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(new { error = message });
    }
}
