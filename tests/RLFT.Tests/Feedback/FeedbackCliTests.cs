using Rlft.Actors.Configuration;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

public class FeedbackCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Feedback_token_prints_a_token_and_a_config_line_holding_only_its_hash()
    {
        var (code, output, _) = Run("feedback-token", "--rater", "alice");
        Assert.Equal(0, code);
        var lines = output.Split('\n');
        string token = lines.Single(l => l.StartsWith("token: ", StringComparison.Ordinal))[7..].Trim();
        string line = lines.Single(l => l.StartsWith("config: ", StringComparison.Ordinal))[8..].Trim();
        Assert.DoesNotContain(token, line);
        var options = FeedbackOptions.FromConfig(RlftConfig.ParseText($"rlft.feedback.raters = [ {line} ]"));
        Assert.Equal(new RaterEntry("alice", RaterTokens.Hash(token)), Assert.Single(options.Raters));
    }

    [Theory]
    [InlineData("feedback-token")]
    [InlineData("feedback-token", "--rater", "a b")]
    [InlineData("feedback", "--config", "/nonexistent/feedback.conf")]
    [InlineData("feedback", "--config", "/nonexistent/feedback.conf", "--log-level", "loud")]
    [InlineData("simulate-raters", "--url", "not-a-url", "--token", "t")]
    [InlineData("simulate-raters", "--url", "http://127.0.0.1:1", "--token", "t", "--rule", "likes-cats")]
    [InlineData("simulate-raters", "--url", "http://127.0.0.1:1", "--token", "t", "--ratings", "-1")]
    public void Bad_feedback_invocations_fail_with_one_line(params string[] args)
    {
        var (code, output, err) = Run(args);
        Assert.NotEqual(0, code);
        Assert.Equal("", output);
        Assert.StartsWith("rlft: ", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Theory]
    [InlineData("rlft.feedback { bogus = 1 }", "rlft.feedback.bogus: unknown key")]
    [InlineData("rlft.feedback { raters-per-item = 0 }", "rlft.feedback.raters-per-item: 0 is outside")]
    [InlineData("rlft.feedback { raters = [ { name = \"x\", token-sha256 = \"abc\" } ] }", "rlft.feedback.raters[0].token-sha256: expected 64 hex digits")]
    [InlineData("rlft.feedback { raters = [ { name = \"x\", token = \"abc\" } ] }", "rlft.feedback.raters[0].token: unknown key")]
    [InlineData("rlft.feedback { }", "rlft.feedback.raters: no raters configured")]
    public void Invalid_feedback_configs_are_refused_naming_the_key(string hocon, string message)
    {
        string file = Path.Combine(FeedbackTestNode.TempDirectory(), "f.conf");
        File.WriteAllText(file, hocon);
        var (code, _, err) = Run("feedback", "--config", file);
        Assert.NotEqual(0, code);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void The_shipped_feedback_preset_is_valid()
    {
        var options = FeedbackOptions.FromConfig(RlftConfig.LoadFile(Path.Combine(RlftConfig.HoconDirectory, "feedback.conf")));
        Assert.Equal((1, 65536, "drop"), (options.RatersPerItem, options.MaxRequestBytes, options.Fallback));
    }
}

public class FeedbackBenchTests
{
    [Fact]
    public async Task A_tiny_bench_prints_one_json_line_with_rate_and_latency()
    {
        string line = await FeedbackBench.RunAsync(raters: 4, items: 40, duration: TimeSpan.FromSeconds(30), ct: TestContext.Current.CancellationToken);
        using var doc = System.Text.Json.JsonDocument.Parse(line);
        var r = doc.RootElement;
        Assert.Equal("feedback/ratings", r.GetProperty("name").GetString());
        Assert.Equal(40, r.GetProperty("ratings").GetInt32());
        Assert.Equal(0, r.GetProperty("failed").GetInt32());
        Assert.True(r.GetProperty("post_p99_ms").GetDouble() >= r.GetProperty("post_p50_ms").GetDouble());
        Assert.DoesNotContain('\n', line);
    }
}

public class FeedbackUrlsTests
{
    [Fact]
    public void Urls_come_from_the_config_and_bad_ones_are_named()
    {
        Assert.Equal(["http://127.0.0.1:5080"], FeedbackOptions.FromConfig(RlftConfig.ParseText("rlft.feedback { }")).Urls);
        Assert.Equal(["http://0.0.0.0:6000"], FeedbackOptions.FromConfig(RlftConfig.ParseText("rlft.feedback.urls = [\"http://0.0.0.0:6000\"]")).Urls);
        var e = Assert.Throws<ConfigException>(() => FeedbackOptions.FromConfig(RlftConfig.ParseText("rlft.feedback.urls = [\"ftp://x\"]")));
        Assert.StartsWith("rlft.feedback.urls[0]: 'ftp://x' is not an http(s) address", e.Message);
    }
}

public class HiddenRuleTests
{
    [Theory]
    [InlineData(" the movie was great and fun.", 7)]
    [InlineData(" the movie was great and dull.", 4)]
    [InlineData(" the movie was awful and dull.", 1)]
    [InlineData(" 7.", 1)]
    public void The_positive_rule_scores_the_share_of_positive_sentiment_words(string text, int score) =>
        Assert.Equal(score, HiddenRule.Positive.Score(text));

    [Fact]
    public void Rules_parse_by_name_and_refuse_unknown_ones()
    {
        Assert.Equal(5, HiddenRule.Parse("word:tidy").Score("tidy and tidy"));
        Assert.Same(HiddenRule.Positive, HiddenRule.Parse("positive"));
        Assert.Throws<ArgumentException>(() => HiddenRule.Parse("word:"));
        Assert.Throws<ArgumentException>(() => HiddenRule.Parse("kindness"));
    }
}
