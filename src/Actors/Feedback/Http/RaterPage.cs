using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// A page of the feedback node (the rater page, the admin page): an embedded HTML file with its shared stylesheet and
/// its script inlined where it says <c>/*include:NAME*/</c>, so the page is one self-contained response; and a
/// Content-Security-Policy that allows exactly its own inline scripts by hash: even if markup slipped into the page,
/// no injected script or handler would run.
/// </summary>
internal sealed partial record RaterPage(string Html, string ContentSecurityPolicy)
{
    public static RaterPage Load(string name)
    {
        string html = Include().Replace(Resource(name), m => Resource(m.Groups[1].Value));
        var hashes = Regex.Matches(html, "<script>(.*?)</script>", RegexOptions.Singleline)
            .Select(m => $"'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(m.Groups[1].Value)))}'");
        string csp = $"default-src 'none'; script-src {string.Join(' ', hashes)}; style-src 'unsafe-inline'; connect-src 'self'; "
            + "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        return new RaterPage(html, csp);
    }

    static string Resource(string name)
    {
        using var stream = typeof(RaterPage).Assembly.GetManifestResourceStream($"Rlft.Actors.Feedback.{name}")
            ?? throw new InvalidOperationException($"the page resource {name} is missing from Rlft.Actors");
        return new StreamReader(stream, Encoding.UTF8).ReadToEnd();
    }

    [GeneratedRegex(@"/\*include:([a-z.-]+)\*/")]
    private static partial Regex Include();
}
