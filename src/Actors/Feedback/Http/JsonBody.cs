using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// Request bodies of the API: <c>Content-Type: application/json</c> (optionally <c>; charset=utf-8</c>, nothing
/// else: 415), at most the configured size (413), one JSON value at most 16 levels deep, and every string and field
/// name UTF-8 text without unpaired surrogates or NUL (400 naming the field). A leading UTF-8 byte order mark is
/// skipped (RFC 8259 allows a parser to ignore it).
/// </summary>
internal static class JsonBody
{
    public const int MaxDepth = 16;
    const int DrainBytes = 1 << 20;

    static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    /// <summary>
    /// For calls whose body is all optional fields (undo, revoke, discard): a request with no body at all (no
    /// Content-Type, nothing sent) reads as <c>{}</c>; a body, if sent, is held to every rule of <see cref="ReadAsync"/>.
    /// </summary>
    public static Task<JsonElement> ReadOptionalAsync(HttpContext ctx, int limit) =>
        ctx.Request.ContentType is null && !HasBody(ctx) ? Task.FromResult(EmptyObject) : ReadAsync(ctx, limit);

    static bool HasBody(HttpContext ctx) => ctx.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? ctx.Request.ContentLength > 0;

    public static async Task<JsonElement> ReadAsync(HttpContext ctx, int limit)
    {
        bool hasBody = HasBody(ctx);
        if (ctx.Request.ContentType is { } type) CheckContentType(type);
        else if (hasBody) throw new HttpStatusException(415, "Content-Type: missing (expected application/json)");
        // A body up to DrainBytes over the limit is read to its end before the 413, so the client, still sending,
        // receives the answer instead of a reset connection; anything larger is refused without reading it.
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = (long)limit + DrainBytes;
        if (ctx.Request.ContentLength > (long)limit + DrainBytes) throw new HttpStatusException(413, $"body: larger than {limit} bytes");
        var buffer = new MemoryStream();
        long total = 0;
        try
        {
            var chunk = new byte[16 * 1024];
            int n;
            while ((n = await ctx.Request.Body.ReadAsync(chunk, ctx.RequestAborted)) > 0)
            {
                total += n;
                if (total <= limit) buffer.Write(chunk, 0, n);
            }
        }
        catch (BadHttpRequestException e)
        {
            throw new HttpStatusException(e.StatusCode, e.StatusCode == 413 ? $"body: larger than {limit} bytes" : "body: could not be read");
        }
        if (total > limit) throw new HttpStatusException(413, $"body: larger than {limit} bytes");
        var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (bytes.Span.StartsWith(Utf8Bom)) bytes = bytes[Utf8Bom.Length..];
        if (bytes.Length == 0) throw new BadRequest("body: empty (expected a JSON object)");
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = MaxDepth });
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new BadRequest($"body: not valid JSON ({e.Message.Split('.')[0]})");
        }
        CheckText(root, "body");
        return root;
    }

    static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    /// <summary>415 unless the media type is application/json and the only parameter, if any, is charset=utf-8.</summary>
    public static void CheckContentType(string header)
    {
        if (!MediaTypeHeaderValue.TryParse(header, out var type))
            throw new HttpStatusException(415, $"Content-Type: '{Shorten(header)}' is not a media type (expected application/json)");
        if (!type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
            throw new HttpStatusException(415, $"Content-Type: expected application/json, got {Shorten(type.MediaType.ToString())}");
        foreach (var p in type.Parameters)
        {
            if (!p.Name.Equals("charset", StringComparison.OrdinalIgnoreCase))
                throw new HttpStatusException(415, $"Content-Type: unexpected parameter '{Shorten(p.Name.ToString())}' (only charset=utf-8 is accepted)");
            string charset = HeaderUtilities.RemoveQuotes(p.Value).ToString();
            if (!charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
                throw new HttpStatusException(415, $"Content-Type: charset {Shorten(charset)} is not accepted (expected utf-8)");
        }
    }

    /// <summary>
    /// Every string and field name must decode: invalid UTF-8 bytes and unpaired surrogate escapes would otherwise
    /// fail later, wherever the text is first read. The message names the field (<c>items[0].prompt</c>).
    /// </summary>
    static void CheckText(JsonElement el, string at)
    {
        switch (el.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in el.EnumerateObject())
                {
                    string name = Decode(JsonMarshal.GetRawUtf8PropertyName(p), p, static p => p.Name, $"{at}: a field name");
                    CheckText(p.Value, at == "body" ? name : $"{at}.{name}");
                }
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in el.EnumerateArray()) CheckText(item, $"{at}[{i++}]");
                break;
            case JsonValueKind.String:
                Decode(JsonMarshal.GetRawUtf8Value(el), el, static e => e.GetString()!, $"{at}:");
                break;
        }
    }

    static string Decode<T>(ReadOnlySpan<byte> raw, T source, Func<T, string> decode, string what)
    {
        if (!Utf8.IsValid(raw)) throw new BadRequest($"{what} contains invalid UTF-8 (request bodies must be UTF-8)");
        string text;
        try { text = decode(source); }
        catch (InvalidOperationException) { throw new BadRequest($"{what} contains an unpaired surrogate escape (\\uD800-\\uDFFF must come in pairs)"); }
        if (text.Contains('\0')) throw new BadRequest($"{what} contains a NUL character (\\u0000)");
        return text;
    }

    static string Shorten(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
