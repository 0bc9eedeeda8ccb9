using System.Text.Json;
using Microsoft.Playwright;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>
/// The rater and admin pages in headless Chromium, used as people would: guidelines, ties with a rationale, skip, undo,
/// a conversation, revocation by the admin; hostile Markdown; criteria by keyboard; dark mode and a tablet screen.
/// With RLFT_SCREENSHOT_DIR set, each test leaves screenshots there.
/// </summary>
public class RaterWorkflowPageTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>What the screen shows (the rater page keeps its answer bar at the bottom of the screen); the admin page whole.</summary>
    static async Task Shot(IPage page, string name, bool fullPage = false)
    {
        if (Environment.GetEnvironmentVariable("RLFT_SCREENSHOT_DIR") is { } dir)
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(dir, name + ".png"), FullPage = fullPage });
    }

    static async Task<IPage> SignIn(IBrowserContext context, FeedbackTestNode node, string token, string path = "/")
    {
        var page = await context.NewPageAsync();
        await page.GotoAsync(new Uri(node.Url, path).ToString());
        await page.FillAsync("#token", token);
        await page.Keyboard.PressAsync("Enter");
        return page;
    }

    static List<JsonElement> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public async Task A_rater_reads_guidelines_ties_with_a_rationale_skips_undoes_rates_a_conversation_and_is_revoked_by_the_admin()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with
        {
            Guidelines = new Dictionary<string, string> { ["default"] = "## How to rate\n\nPrefer the **correct** answer; call it a *tie* when both are equally good." },
        });
        await node.Admin.EnqueueAsync([
            FeedbackTestNode.Compare("c1", "What is 2+2?", "4", "Four."),
            FeedbackTestNode.Compare("c2", "Name a colour", "blue", "the sky"),
            FeedbackTestNode.Compare("c3", "Capital of France?", "Lyon", "Paris"),
            new
            {
                id = "conv", kind = "compare",
                messages = new object[] { new { role = "system", content = "You are terse." }, new { role = "user", content = "Reverse a list in **Python**." } },
                completions = new[] { "Use `reversed(xs)`.", "```python\nxs[::-1]\n```" },
            },
        ], Ct);
        await using var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1366, Height = 768 } });
        var page = await SignIn(context, node, node.Tokens["alice"]);

        // The guideline opens on first sight, rendered from Markdown, with its version.
        await Assertions.Expect(page.Locator("#guideline-body h2")).ToHaveTextAsync("How to rate");
        await Assertions.Expect(page.Locator("#guideline-body strong")).ToHaveTextAsync("correct");
        await Assertions.Expect(page.Locator("#guideline-version")).ToHaveTextAsync("default · v1");
        await Shot(page, "rater-guidelines-and-pair");

        // c1: a tie, with a sentence on why (W focuses the box, Esc leaves it, T answers).
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync("What is 2+2?");
        await page.Keyboard.PressAsync("w");
        await page.Keyboard.TypeAsync("Both are right; one is a digit.");
        await page.Keyboard.PressAsync("Escape");
        await page.Keyboard.PressAsync("t");
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync("Name a colour");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#today")).ToHaveTextAsync("1");

        // c2: skipped.
        await page.Keyboard.PressAsync("k");
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync("Capital of France?");

        // c3: A by mistake, undone, then B.
        await page.Keyboard.PressAsync("1");
        await Assertions.Expect(page.Locator("#undo-bar")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#messages .msg")).ToHaveCountAsync(2);   // moved on to the conversation
        await Shot(page, "rater-conversation-with-undo");
        await page.Keyboard.PressAsync("u");
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync("Capital of France?");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1");
        await page.ClickAsync("#pick-1");

        // conv: shown as a chat; completions are the next assistant turn with code rendered.
        await Assertions.Expect(page.Locator("#context-label")).ToHaveTextAsync("Conversation");
        await Assertions.Expect(page.Locator("#messages .msg.user strong")).ToHaveTextAsync("Python");
        await Assertions.Expect(page.Locator("#label-1")).ToHaveTextAsync("Next assistant turn · B");
        await Assertions.Expect(page.Locator("#text-1 pre code")).ToHaveTextAsync("xs[::-1]\n");
        await page.Keyboard.PressAsync("2");
        await Assertions.Expect(page.Locator("#empty")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("3");

        var ratings = Lines(await node.Admin.GetTextAsync("/api/v1/admin/ratings", Ct)).ToDictionary(r => r.GetProperty("taskId").GetString()!);
        Assert.Equal(["c1", "c3", "conv"], ratings.Keys.Order());
        Assert.Equal(("tie", "Both are right; one is a digit."), (ratings["c1"].GetProperty("verdict").GetString(), ratings["c1"].GetProperty("rationale").GetString()));
        Assert.Equal("b", ratings["c3"].GetProperty("choice").GetString());
        Assert.Equal(("default", 1), (ratings["c1"].GetProperty("guideline").GetProperty("name").GetString(), ratings["c1"].GetProperty("guideline").GetProperty("version").GetInt32()));
        var aside = Assert.Single(Lines(await node.Admin.GetTextAsync("/api/v1/export?format=set-aside", Ct)));
        Assert.Equal(("c2", "skip"), (aside.GetProperty("taskId").GetString(), aside.GetProperty("kind").GetString()));

        // The admin revokes alice on the admin page; her page's next request is refused and signs her out.
        var admin = await SignIn(context, node, node.AdminToken, "/admin");
        await Assertions.Expect(admin.Locator("#raters tr", new() { HasText = "alice" })).ToContainTextAsync("active");
        admin.Dialog += (_, dialog) => dialog.AcceptAsync();
        await admin.Locator("#raters tr", new() { HasText = "alice" }).Locator("button", new() { HasText = "Revoke" }).ClickAsync();
        await Assertions.Expect(admin.Locator("#raters tr", new() { HasText = "alice" })).ToContainTextAsync("revoked");
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c4", "One more", "x", "y")], Ct);
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("revoked");                 // the page polls
        await Assertions.Expect(page.Locator("#login")).ToBeVisibleAsync();
        using var after = await node.Http.SendAsync(node.Request(HttpMethod.Get, "/api/v1/tasks/next", node.Tokens["alice"]), Ct);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, after.StatusCode);
    }

    const string Hostile = """
        Hello <script>window.pwned = 1</script> <img src=x onerror="window.pwned = 2"> <iframe src="javascript:window.pwned=4"></iframe>

        [click me](javascript:window.pwned=3) [or me](JAVASCRIPT:window.pwned=5) <javascript:window.pwned=6> [data](data:text/html,<script>parent.pwned=7</script>)

        <a href="javascript:window.pwned=8">raw link</a> <svg onload="window.pwned=9"></svg> [safe](https://example.org/docs)

        ```html
        <script>window.pwned = 10</script>
        ```
        """;

    [Fact]
    public async Task Markdown_with_scripts_javascript_links_and_raw_html_renders_inert()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with { Guidelines = new Dictionary<string, string> { ["default"] = Hostile } });
        await node.Admin.EnqueueAsync([new
        {
            id = "evil", kind = "compare", prompt = Hostile,
            messages = new object[] { new { role = "user", content = Hostile } },
            completions = new[] { Hostile, "plain" },
        }], Ct);
        await using var context = await browser.Browser.NewContextAsync();
        var page = await SignIn(context, node, node.Tokens["bob"]);
        await Assertions.Expect(page.Locator("#text-0 pre code")).ToContainTextAsync("<script>window.pwned = 10</script>");
        foreach (var link in await page.Locator("#task a").AllAsync())
        {
            Assert.Matches("^(https?://|mailto:)", await link.GetAttributeAsync("href"));
            Assert.Equal("noopener noreferrer", await link.GetAttributeAsync("rel"));
        }
        Assert.Equal(4, await page.Locator("#task a[href='https://example.org/docs']").CountAsync());   // guideline, prompt, message, completion
        Assert.Equal(0, await page.Locator("#task script, #task img, #task iframe, #task svg, #task [onerror], #task [onload]").CountAsync());
        // The refused links are plain text: clicking them does nothing.
        await page.Locator("#text-0").GetByText("click me").ClickAsync();
        await page.Locator("#prompt").GetByText("raw link", new() { Exact = false }).First.ClickAsync();
        Assert.Null(await page.EvaluateAsync<int?>("() => window.pwned ?? null"));
        // Raw mode shows the same text, still inert.
        await page.Keyboard.PressAsync("r");
        await Assertions.Expect(page.Locator("#text-0")).ToContainTextAsync("<script>window.pwned = 1</script>");
        Assert.Equal(0, await page.Locator("#task script, #task img, #task iframe").CountAsync());
        Assert.Null(await page.EvaluateAsync<int?>("() => window.pwned ?? null"));
        await Shot(page, "rater-hostile-markdown-raw");
    }

    [Fact]
    public async Task Criteria_are_scored_by_keyboard_and_the_help_overlay_opens_and_closes()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with { Criteria = ["helpfulness", "harmlessness"] });
        await node.Admin.EnqueueAsync([new { id = "s1", kind = "score", prompt = "Explain recursion", completions = new[] { "A function that calls itself.", "See: recursion." } }], Ct);
        await using var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ColorScheme = ColorScheme.Dark, ViewportSize = new ViewportSize { Width = 1366, Height = 768 } });
        var page = await SignIn(context, node, node.Tokens["carol"]);
        await Assertions.Expect(page.Locator("#score-0-0")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("current"));
        // Dark mode follows the system: the page background is dark.
        string background = await page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor");
        Assert.Equal("rgb(21, 24, 31)", background);
        await page.Keyboard.PressAsync("?");
        await Assertions.Expect(page.Locator("#help")).ToBeVisibleAsync();
        await Shot(page, "rater-help-dark");
        await page.Keyboard.PressAsync("Escape");
        await Assertions.Expect(page.Locator("#help")).ToBeHiddenAsync();
        foreach (var key in new[] { "6", "7", "2" }) await page.Keyboard.PressAsync(key);
        await Assertions.Expect(page.Locator("#score-1-1")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("current"));
        await Shot(page, "rater-criteria-dark");
        await page.Keyboard.PressAsync("5");
        await Assertions.Expect(page.Locator("#empty")).ToBeVisibleAsync();
        var line = Assert.Single(Lines(await node.Admin.GetTextAsync("/api/v1/admin/ratings", Ct)));
        Assert.Equal("""{"a":{"helpfulness":6,"harmlessness":7},"b":{"helpfulness":2,"harmlessness":5}}""", line.GetProperty("criteria").GetRawText());
    }

    [Fact]
    public async Task Long_pairs_scroll_together_and_the_page_fits_a_tablet_without_sideways_scrolling()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        string Long(string word) => string.Join("\n\n", Enumerable.Range(1, 120).Select(i => $"{word} paragraph {i}: " + string.Concat(Enumerable.Repeat(word + " ", 12))));
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("long", "Summarise the report", Long("alpha"), Long("beta"))], Ct);
        await using var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 768, Height = 1024 }, HasTouch = true });
        var page = await SignIn(context, node, node.Tokens["dave"]);
        await Assertions.Expect(page.Locator("#text-0")).ToContainTextAsync("alpha paragraph 120");
        await page.Locator("#text-0").EvaluateAsync("e => { e.scrollTop = (e.scrollHeight - e.clientHeight) / 2; }");
        await page.WaitForFunctionAsync("() => document.getElementById('text-1').scrollTop > 0");
        double left = await page.Locator("#text-0").EvaluateAsync<double>("e => e.scrollTop / (e.scrollHeight - e.clientHeight)");
        double right = await page.Locator("#text-1").EvaluateAsync<double>("e => e.scrollTop / (e.scrollHeight - e.clientHeight)");
        Assert.InRange(right, left - 0.02, left + 0.02);
        // Side by side on a tablet held upright, and nothing wider than the screen.
        var a = await page.Locator("#card-0").BoundingBoxAsync();
        var b = await page.Locator("#card-1").BoundingBoxAsync();
        Assert.True(b!.X > a!.X + a.Width - 1, "the completions should sit side by side at 768 px");
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"));
        await Shot(page, "rater-tablet");
        // Unticked, each side scrolls on its own.
        await page.UncheckAsync("#sync");
        double before = await page.Locator("#text-1").EvaluateAsync<double>("e => e.scrollTop");
        await page.Locator("#text-0").EvaluateAsync("e => { e.scrollTop = 0; }");
        await page.WaitForTimeoutAsync(0);
        Assert.Equal(before, await page.Locator("#text-1").EvaluateAsync<double>("e => e.scrollTop"));
    }

    [Fact]
    public async Task The_admin_page_shows_throughput_agreement_and_flags_adds_a_rater_edits_a_guideline_and_exports()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p1", "x", "y", raters: 2), FeedbackTestNode.Compare("c2", "p2 <b>bold?</b>", "x", "y", raters: 2)], Ct);
        foreach (var rater in new[] { "alice", "bob" })
        {
            var client = node.Client(rater);
            await client.NextAsync(Ct);
            await client.RateAsync("c1", "a", null, Ct);
            await client.NextAsync(Ct);
        }
        await node.Client("alice").SetAsideAsync("c2", broken: true, "<script>window.pwned=1</script> both empty", Ct);
        await using var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1366, Height = 900 }, AcceptDownloads = true });
        var page = await SignIn(context, node, node.AdminToken, "/admin");
        await Assertions.Expect(page.Locator("#raters tr", new() { HasText = "alice" })).ToContainTextAsync("1.00");   // α against bob: both chose a
        await Assertions.Expect(page.Locator("#pairs")).ToContainTextAsync("bob");
        await Assertions.Expect(page.Locator("#hours")).ToContainTextAsync(":00");
        await Assertions.Expect(page.Locator("#flagged")).ToContainTextAsync("alice: <script>window.pwned=1</script> both empty");
        Assert.Null(await page.EvaluateAsync<int?>("() => window.pwned ?? null"));

        await page.FillAsync("#add-name", "zoe");
        await page.ClickAsync("#add-form button");
        await Assertions.Expect(page.Locator("#new-token code")).ToContainTextAsync("rlft_");
        string token = await page.Locator("#new-token code").InnerTextAsync();
        Assert.Equal(System.Net.HttpStatusCode.OK, (await node.Http.SendAsync(node.Request(HttpMethod.Get, "/api/v1/me", token), Ct)).StatusCode);

        await page.FillAsync("#guideline-new-name", "compare");
        await page.FillAsync("#guideline-text", "Pick the **better** one.");
        await page.ClickAsync("#guideline-save");
        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("Saved compare v1.");
        await page.Locator("#flagged button", new() { HasText = "Discard" }).ClickAsync();
        await Assertions.Expect(page.Locator("#flagged")).ToContainTextAsync("discarded");
        await Shot(page, "admin-overview", fullPage: true);

        var download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#export-preferences"));
        string path = await download.PathAsync();
        var lines = Lines(await File.ReadAllTextAsync(path, Ct));
        Assert.Equal(2, lines.Count);
        Assert.All(lines, l => Assert.Equal("a", l.GetProperty("answer").GetString()));
    }
}
