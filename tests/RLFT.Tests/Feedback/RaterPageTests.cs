using Microsoft.Playwright;

namespace Rlft.Tests.Feedback;

/// <summary>One headless Debian Chromium per test class (Playwright gives it a fresh temporary profile).</summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    IPlaywright? _playwright;
    public IBrowser Browser { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
    }
}

public class RaterPageTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;
    const string Evil = "Summarise: <script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\"> & reply";

    [Fact]
    public async Task A_rater_signs_in_rates_by_mouse_and_keyboard_and_the_ratings_arrive()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([
            FeedbackTestNode.Compare("c1", Evil, "Short answer.", "A longer answer <b>with markup</b> that stays text."),
            FeedbackTestNode.Compare("c2", "Pick one", "left", "right"),
            FeedbackTestNode.Score("s1", "Rate this", "a single completion"),
            new { id = "s2", kind = "score", prompt = "Rate both", completions = new[] { "first", "second" } },
        ], Ct);
        await using var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 700 } });
        var page = await context.NewPageAsync();
        await page.GotoAsync(node.Url.ToString());

        await page.FillAsync("#token", node.Tokens["alice"]);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync(Evil);

        // Markup in the task is shown as text: the Markdown paragraph is the only element, and nothing ran.
        Assert.Equal(["P"], await page.Locator("#prompt *").EvaluateAllAsync<string[]>("els => els.map(e => e.tagName)"));
        Assert.Equal(0, await page.Locator("#text-1 b").CountAsync());
        Assert.Null(await page.EvaluateAsync<int?>("() => window.pwned ?? null"));
        await Assertions.Expect(page.Locator("#who")).ToHaveTextAsync("alice");
        if (Environment.GetEnvironmentVariable("RLFT_SCREENSHOT_DIR") is { } shots)
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "rater-compare.png"), FullPage = true });

        await page.ClickAsync("#pick-1");                                    // mouse: B is better
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync("Pick one");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1");
        await page.Keyboard.PressAsync("a");                                 // keyboard: A is better
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync("Rate this");
        await page.Keyboard.PressAsync("5");                                 // keyboard: score 5
        await Assertions.Expect(page.Locator("#prompt")).ToHaveTextAsync("Rate both");
        if (Environment.GetEnvironmentVariable("RLFT_SCREENSHOT_DIR") is { } dir)
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(dir, "rater-score.png"), FullPage = true });
        await page.ClickAsync("#score-0-3");                                 // mouse: first completion 3
        await page.Keyboard.PressAsync("6");                                 // keyboard: second completion 6
        await Assertions.Expect(page.Locator("#empty")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("4");

        var ratings = await node.RatingsAsync();
        Assert.Equal(4, ratings.Length);
        Assert.Contains(ratings, r => r.Contains("\"taskId\":\"c1\"") && r.Contains("\"choice\":\"b\"") && r.Contains("\"rater\":\"alice\""));
        Assert.Contains(ratings, r => r.Contains("\"taskId\":\"c2\"") && r.Contains("\"choice\":\"a\""));
        Assert.Contains(ratings, r => r.Contains("\"taskId\":\"s1\"") && r.Contains("\"scores\":{\"a\":5}"));
        Assert.Contains(ratings, r => r.Contains("\"taskId\":\"s2\"") && r.Contains("\"a\":3") && r.Contains("\"b\":6"));
    }

    [Fact]
    public async Task A_revoked_token_is_refused_with_a_message_and_the_token_form_returns()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await using var context = await browser.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(node.Url.ToString());
        await page.FillAsync("#token", node.RevokedToken);
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("revoked");
        await Assertions.Expect(page.Locator("#login")).ToBeVisibleAsync();
        Assert.Null(await page.EvaluateAsync<string?>("() => sessionStorage.getItem('rlft.token')"));
    }
}
