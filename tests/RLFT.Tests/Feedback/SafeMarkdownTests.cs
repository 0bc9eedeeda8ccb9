using Rlft.Actors.Feedback.Http;

namespace Rlft.Tests.Feedback;

/// <summary>Markdown for the rater page: formatting renders, and nothing in the text can become markup, script or a live link.</summary>
public class SafeMarkdownTests
{
    public static TheoryData<string> Hostile => new(
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](javascript&colon;alert(1))",
        "[click](java&#x09;script:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](<javascript:alert(1)>)",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "[ref]\n\n[ref]: javascript:alert(1)",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
        "![x](https://evil.example/pixel.png \"t\" )",
        "[x](https://ok.example \"a\\\" onmouseover=\\\"alert(1)\")",
        "```js\" onmouseover=\"alert(1)\nx\n```",
        "<style>body{display:none}</style>",
        "<svg/onload=alert(1)>",
        "<!-- <script>alert(1)</script> -->",
        "<details open ontoggle=alert(1)>",
        "`<script>alert(1)</script>`",
        "| a | b |\n|---|---|\n| <script>x</script> | [y](javascript:z) |");

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Hostile_markdown_renders_without_script_handlers_or_unsafe_links(string markdown)
    {
        string html = SafeMarkdown.ToHtml(markdown);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<iframe", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<svg", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<style", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<details", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotMatch(@"<[^>]*\son[a-z]+\s*=", html);
        Assert.DoesNotMatch(@"href=""(?!https?://|mailto:)", html);
        Assert.DoesNotMatch(@"(?i)(href|src|action)\s*=\s*""?\s*(javascript|data|vbscript):", html);
    }

    [Fact]
    public void Formatting_and_fenced_code_render_and_markup_inside_stays_text()
    {
        string html = SafeMarkdown.ToHtml("# Title\n\n**bold** and *it* and ~~gone~~\n\n- one\n- two\n\n```python\nprint('<b>hi</b>')\n```\n\n[docs](https://example.org/a?b=c)\n\n| k | v |\n|---|--:|\n| a | 1 |");
        Assert.Contains("<h1>Title</h1>", html);
        Assert.Contains("<strong>bold</strong>", html);
        Assert.Contains("<em>it</em>", html);
        Assert.Contains("<del>gone</del>", html);
        Assert.Contains("<li>one</li>", html);
        Assert.Contains("<pre><code class=\"language-python\">print('&lt;b&gt;hi&lt;/b&gt;')", html);
        Assert.Contains("<a href=\"https://example.org/a?b=c\">docs</a>", html);
        Assert.Contains("<td style=\"text-align: right;\">1</td>", html);
    }

    [Fact]
    public void A_link_with_a_refused_scheme_keeps_its_text_and_an_image_becomes_a_link()
    {
        Assert.Equal("<p>see here</p>\n", SafeMarkdown.ToHtml("see [here](javascript:alert(1))"));
        Assert.Equal("<p>&lt;script&gt;x&lt;/script&gt;</p>\n", SafeMarkdown.ToHtml("<script>x</script>"));
        Assert.Equal("<p><a href=\"https://example.org/p.png\">chart</a></p>\n", SafeMarkdown.ToHtml("![chart](https://example.org/p.png)"));
    }

    [Theory]
    [InlineData("https://example.org", true)]
    [InlineData("HTTP://EXAMPLE.ORG/x", true)]
    [InlineData("mailto:a@example.org", true)]
    [InlineData("javascript:alert(1)", false)]
    [InlineData(" javascript:alert(1)", false)]
    [InlineData("java\tscript:alert(1)", false)]
    [InlineData("data:text/html,x", false)]
    [InlineData("/relative", false)]
    [InlineData("https://example.org/\"onmouseover=", false)]
    public void Only_http_https_and_mailto_destinations_are_kept(string url, bool allowed) =>
        Assert.Equal(allowed, SafeMarkdown.AllowedUrl(url));
}
