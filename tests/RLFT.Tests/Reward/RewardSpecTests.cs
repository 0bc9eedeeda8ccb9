using Rlft.Actors.Configuration;
using Rlft.Reward;
using Rlft.Reward.Pipeline;

namespace Rlft.Tests.Reward;

public class RewardSpecTests
{
    static string Error(string hocon, RewardEnvironment? env = null) =>
        Assert.Throws<ConfigException>(() => RewardSpecReader.Build(RlftConfig.ParseText(hocon, "spec.conf"), env ?? new RewardEnvironment())).Message;

    [Fact]
    public void The_example_spec_builds_its_pipeline()
    {
        var config = RlftConfig.LoadFile(Path.Combine(RlftConfig.HoconDirectory, "rewards", "example.conf"));
        var pipeline = RewardSpecReader.Build(config, new RewardEnvironment());
        Assert.Equal(["correct", "format", "brevity", "repetition", "polite"], pipeline.Components.Select(c => c.Options.Name));
        Assert.Equal(new ClipRange(-5, 5), pipeline.Combiner.TotalClip);
        Assert.Equal(MissingPolicy.Substitute(0), pipeline.Components[0].Options.Missing);
        Assert.Equal(Normalization.Batch, pipeline.Components[4].Options.Normalization);
    }

    [Theory]
    [InlineData("rewards { components = [ { source = magic } ] }", "rewards.components[0].source: 'magic' is not one of exact-match, numeric-match")]
    [InlineData("rewards { components = [ { source = length, target = 5 }, { source = regex, pattern = x, weight = -1 } ] }", "rewards.components[1].weight: -1 is outside [0,")]
    [InlineData("rewards { components = [ { source = length } ] }", "rewards.components[0].target: missing required key")]
    [InlineData("rewards { components = [ { source = length, target = 5, pattern = x } ] }", "rewards.components[0].pattern: unknown key (expected one of: clip,")]
    [InlineData("rewards { components = [ { source = regex, pattern = \"(\" } ] }", "rewards.components[0].pattern: invalid regular expression")]
    [InlineData("rewards { components = [ { source = length, target = 5, clip { min = 2, max = 1 } } ] }", "rewards.components[0].clip: min 2 is above max 1")]
    [InlineData("rewards { components = [ { source = length, target = 5, clip { low = 1 } } ] }", "rewards.components[0].clip.low: unknown key")]
    [InlineData("rewards { components = [ { source = length, target = 5, substitute = 1 } ] }", "rewards.components[0].substitute: only allowed with on-missing = substitute")]
    [InlineData("rewards { components = [ { source = length, target = 5, on-missing = substitute } ] }", "rewards.components[0].substitute: missing required key")]
    [InlineData("rewards { components = [ { source = length, target = 5 }, { source = length, target = 9 } ] }", "rewards.components[1].name: 'length' is already the name of rewards.components[0]")]
    [InlineData("rewards { components = [ { source = length, target = 5, name = \"a/b\" } ] }", "rewards.components[0].name: 'a/b' may hold only")]
    [InlineData("rewards { components = [ { source = http, url = \"ftp://x\" } ] }", "rewards.components[0].url: 'ftp://x' is not an http(s) URL")]
    [InlineData("rewards { components = [ { source = function, function = nope } ] }", "rewards.components[0]: no reward function named 'nope' (registered: char-count, contains-reference, word-count)")]
    [InlineData("rewards { components = [ { source = reward-model, model = rm } ] }", "rewards.components[0]: reward-model sources are not available in this command")]
    [InlineData("rewards { components = [ { source = human } ] }", "rewards.components[0]: human sources need the feedback service")]
    [InlineData("rewards { clip { max = x }\n components = [ { source = length, target = 5 } ] }", "rewards.clip.max: expected a number, got 'x'")]
    [InlineData("rewards { componets = [] }", "rewards.componets: unknown key")]
    [InlineData("rewards { components = [] }", "rewards.components: at least one component is required")]
    [InlineData("other = 1", "rewards: missing required section")]
    public void Bad_specs_are_refused_naming_the_key_path(string hocon, string expected)
    {
        string message = Error(hocon);
        Assert.StartsWith(expected, message);
        Assert.EndsWith("(in spec.conf)", message);
    }
}
