using System.Net;
using System.Text.RegularExpressions;
using Markdig;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// Markdown (CommonMark with pipe tables, fenced code, task lists and strikethrough) to HTML that is safe to put in the
/// rater page, in three layers: Markdig with raw HTML turned off, so markup in the text comes out as text; link and
/// image destinations allow-listed on the syntax tree (http, https, mailto; anything else, <c>javascript:</c> in any
/// spelling included, loses its link; images become links, the page loads none); and an allow-list check of the
/// HTML produced (tags, attributes, and each attribute's value), which, if anything unexpected slips through, throws
/// the HTML away and returns the text escaped in a <c>&lt;pre&gt;</c>. The page's Content-Security-Policy (no inline
/// script but its own, by hash) is the fourth.
/// </summary>
internal static partial class SafeMarkdown
{
    static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder()
        .DisableHtml()
        .UsePipeTables()
        .UseEmphasisExtras(Markdig.Extensions.EmphasisExtras.EmphasisExtraOptions.Strikethrough)
        .UseTaskLists()
        .Build();

    static readonly HashSet<string> Tags =
    [
        "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
        "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "input", "span",
    ];

    public static string ToHtml(string markdown)
    {
        var document = Markdown.Parse(markdown, Pipeline);
        foreach (var link in document.Descendants<LinkInline>().ToList()) Neutralise(link);
        foreach (var auto in document.Descendants<AutolinkInline>().ToList())
            if (!AllowedUrl(auto.Url)) auto.ReplaceBy(new LiteralInline(auto.Url));
        string html = document.ToHtml(Pipeline);
        return IsAllowed(html) ? html : "<pre>" + WebUtility.HtmlEncode(markdown) + "</pre>";
    }

    /// <summary>A link keeps its destination only when allowed; an image becomes a link to it (or its alt text).</summary>
    static void Neutralise(LinkInline link)
    {
        bool allowed = link.Url is { } url && AllowedUrl(url);
        link.Title = null; // nothing of the text goes into an attribute but an allowed destination
        if (link.IsImage)
        {
            link.IsImage = false;
            if (link.FirstChild is null) link.AppendChild(new LiteralInline("image"));
        }
        if (allowed) return;
        // Keep the text, drop the link.
        Inline at = link;
        foreach (var child in link.ToList())
        {
            child.Remove();
            at.InsertAfter(child);
            at = child;
        }
        link.Remove();
    }

    /// <summary>http(s) and mailto only, judged on the decoded destination with nothing a browser would strip before the scheme.</summary>
    public static bool AllowedUrl(string url) => UrlPattern().IsMatch(url);

    [GeneratedRegex(@"^(https?://|mailto:)[^\s\x00-\x1f\x7f<>""'`]*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex UrlPattern();

    [GeneratedRegex(@"<(/?)([a-zA-Z0-9]+)((?:\s+[a-zA-Z-]+(?:=""[^""<>]*"")?)*)\s*/?>", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"\s+([a-zA-Z-]+)(?:=""([^""<>]*)"")?", RegexOptions.CultureInvariant)]
    private static partial Regex AttributePattern();

    [GeneratedRegex(@"^(language-[A-Za-z0-9_+#.-]{1,40}|contains-task-list|task-list-item|task-list-item-checkbox)$", RegexOptions.CultureInvariant)]
    private static partial Regex ClassPattern();

    /// <summary>Every '&lt;' starts an allowed tag whose attributes are allowed for it, with allowed values.</summary>
    static bool IsAllowed(string html)
    {
        int tags = 0;
        foreach (Match m in TagPattern().Matches(html))
        {
            tags++;
            if (!Tags.Contains(m.Groups[2].Value)) return false;
            foreach (Match a in AttributePattern().Matches(m.Groups[3].Value))
                if (!AllowedAttribute(m.Groups[2].Value, a.Groups[1].Value, WebUtility.HtmlDecode(a.Groups[2].Value))) return false;
        }
        return tags == html.Count(c => c == '<');
    }

    static bool AllowedAttribute(string tag, string name, string value) => (tag, name) switch
    {
        ("a", "href") => AllowedUrl(value),
        (_, "class") => value.Split(' ', StringSplitOptions.RemoveEmptyEntries).All(c => ClassPattern().IsMatch(c)),
        ("th" or "td", "style") => value is "text-align: left;" or "text-align: center;" or "text-align: right;",
        ("input", "type") => value == "checkbox",
        ("input", "disabled" or "checked") => true,
        ("ol", "start") => value.All(char.IsAsciiDigit),
        _ => false,
    };
}
