using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Rlft.Actors.Dashboard;
using Rlft.Tests.Feedback;

namespace Rlft.Tests.Cluster;

/// <summary>The live job page of `rlft run --dashboard`, in headless Chromium while a job runs and after it ends.</summary>
public sealed class DashboardPageTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_page_shows_the_job_its_curves_samples_and_members_live_and_keeps_them_after_the_end()
    {
        int port = JobHarness.FreePort();
        string url = $"http://127.0.0.1:{port}/";
        string jobFile = JobHarness.JobFile(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(8)));
        var (o, e) = (new LineSignal("rlft: dashboard at"), new StringWriter());
        var run = Task.Run(() => Rlft.Host.Commands.Cli.Run(["run", jobFile, "--dashboard", url], o, e), Ct);

        await using var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 900 } });
        var page = await context.NewPageAsync();
        // The command prints the line once Kestrel listens; the run ending first means it never will.
        var first = await Task.WhenAny(o.Seen, run).WaitAsync(TimeSpan.FromMinutes(2), Ct);
        Assert.True(first == o.Seen, $"the dashboard never started: {e}");
        await page.GotoAsync(url);
        await Assertions.Expect(page.Locator("#job")).ToHaveTextAsync("RLFT job: test", new() { Timeout = 60_000 });

        // While PPO runs: the reward curve grows point by point, the trained batch's samples appear with their components.
        var reward = page.Locator("#panel-reward polyline[data-key='reward/mean']");
        await Assertions.Expect(reward).ToHaveCountAsync(1, new() { Timeout = 120_000 });
        await page.WaitForFunctionAsync("() => +document.querySelector(\"#panel-reward polyline[data-key='reward/mean']\").dataset.points >= 2",
            null, new() { Timeout = 120_000 });
        await Assertions.Expect(page.Locator("#samples tr").First).ToContainTextAsync("task", new() { Timeout = 60_000 });
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("ppo");
        await Assertions.Expect(page.Locator("#panel-kl polyline[data-key='objective/kl']")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#panel-loss polyline[data-key='loss/sft']")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#members tr").First).ToContainTextAsync("learner");
        Assert.DoesNotContain(Path.GetDirectoryName(jobFile)!, await page.ContentAsync());   // no paths on the page
        if (Environment.GetEnvironmentVariable("RLFT_SCREENSHOT_DIR") is { } shots)
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard.png"), FullPage = true });

        // The end: the page shows that the job finished and keeps its curves once the process has stopped serving.
        Assert.Equal(0, await run);
        Assert.Contains("rlft: dashboard at", o.ToString());
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("node is gone", new() { Timeout = 10_000 });
        int points = int.Parse((await reward.GetAttributeAsync("data-points"))!);
        Assert.Equal(8, points);
        await Assertions.Expect(page.Locator("#job")).ToHaveTextAsync("RLFT job: test");
    }

    [Fact]
    public void Curves_come_from_the_training_lines_of_metrics_jsonl_and_leave_held_out_figures_and_a_partial_line_out()
    {
        string file = Path.Combine(Directory.CreateTempSubdirectory("rlft-dash").FullName, "metrics.jsonl");
        File.WriteAllText(file, """
            {"step":1,"stage":"0-sft","loss/sft":6.0}
            {"step":1,"stage":"0-sft","eval":"before","eval/loss":6.1}
            {"step":2,"stage":"1-ppo","reward/mean":0.25,"objective/kl":0.5,"loss/policy":-0.1,"loss/value":0.3,"rollout/tokens_per_second":120.5}
            {"step":3,"stage":"1-ppo","reward/mean":0.75,"objective/kl":"NaN"}
            {"step":4,"stage":"1-ppo","reward/me
            """);
        var curves = JobDashboard.Curves(file);
        Assert.Equal("[[2,0.25],[3,0.75]]", curves["reward"]!["reward/mean"]!.ToJsonString());
        Assert.Equal("[[2,0.5]]", curves["kl"]!["objective/kl"]!.ToJsonString());
        Assert.Equal(["loss/policy", "loss/sft", "loss/value"], ((JsonObject)curves["loss"]!).Select(kv => kv.Key).ToArray());
        Assert.Equal("[[1,6]]", curves["loss"]!["loss/sft"]!.ToJsonString());
        Assert.Equal("[[2,120.5]]", curves["throughput"]!["rollout/tokens_per_second"]!.ToJsonString());
    }

    [Fact]
    public async Task After_the_end_a_page_that_polled_is_served_until_it_has_fetched_the_final_state()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-dash").FullName;
        var job = Rlft.Actors.Jobs.JobSpec.Parse(Rlft.Actors.Configuration.RlftConfig.ParseText($"rlft.job.output-dir = \"{dir}\"", "test-overrides")
            .WithFallback(Rlft.Actors.Configuration.RlftConfig.LoadFile(Path.Combine(Rlft.Actors.Configuration.RlftConfig.HoconDirectory, "quickstart.conf"))));
        await using var dashboard = await JobDashboard.StartAsync("http://127.0.0.1:0/", job, () => [], Ct);
        using var http = new HttpClient { BaseAddress = new Uri(dashboard.Urls[0]) };
        Assert.Contains("\"finished\":false", await http.GetStringAsync("api/state", Ct));   // a page polls during the job
        var linger = dashboard.FinishAsync(new Rlft.Actors.Protocol.JobFinished(true, "job completed", []));
        Assert.False(linger.IsCompleted);
        Assert.Contains("\"finished\":true", await http.GetStringAsync("api/state", Ct));    // it fetches the final state
        // Served: the linger ends now, well before JobDashboard.MaxLinger (15 s).
        await linger.WaitAsync(TimeSpan.FromSeconds(10), Ct);
    }

    [Fact]
    public void A_dashboard_address_that_is_not_an_http_url_is_refused_before_the_job_runs()
    {
        string jobFile = JobHarness.JobFile(JobHarness.Ppo(2));
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, Rlft.Host.Commands.Cli.Run(["run", jobFile, "--dashboard", "https://0.0.0.0/page"], o, e));
        Assert.Contains("--dashboard", e.ToString());
        Assert.DoesNotContain("rlft: job", o.ToString());
    }

    /// <summary>Output that completes <see cref="Seen"/> when a line starting with the given text is written.</summary>
    sealed class LineSignal(string prefix) : StringWriter
    {
        readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Seen => _seen.Task;

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value?.StartsWith(prefix, StringComparison.Ordinal) == true) _seen.TrySetResult();
        }
    }
}
