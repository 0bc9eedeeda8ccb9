using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// The rater page (an embedded, self-contained HTML file) and a Content-Security-Policy that allows exactly its
/// own inline script by hash: even if markup slipped into the page, no injected script or handler would run.
/// </summary>
public sealed record RaterPage(string Html, string ContentSecurityPolicy)
{
    public static RaterPage Load()
    {
        using var stream = typeof(RaterPage).Assembly.GetManifestResourceStream("Rlft.Actors.Feedback.rater.html")
            ?? throw new InvalidOperationException("the rater page resource is missing from Rlft.Actors");
        string html = new StreamReader(stream, Encoding.UTF8).ReadToEnd();
        var hashes = Regex.Matches(html, "<script>(.*?)</script>", RegexOptions.Singleline)
            .Select(m => $"'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(m.Groups[1].Value)))}'");
        string csp = $"default-src 'none'; script-src {string.Join(' ', hashes)}; style-src 'unsafe-inline'; connect-src 'self'; "
            + "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        return new RaterPage(html, csp);
    }
}
