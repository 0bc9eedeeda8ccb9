using Rlft.Actors.Configuration;

namespace Rlft.Tests.Configuration;

public class RlftConfigTests
{
    [Fact]
    public void Base_akka_settings_parse_and_bind_cluster_and_strict_serialization()
    {
        var c = RlftConfig.BaseAkka();
        Assert.Equal("cluster", c.GetString("akka.actor.provider"));
        Assert.False(c.GetBool("akka.actor.serialization-settings.allow-unregistered-types"));
        Assert.Equal("PinnedDispatcher", c.GetString("rlft.compute-dispatcher.type"));
    }

    [Fact]
    public void Typed_getters_name_the_key_path_on_bad_values()
    {
        var c = RlftConfig.ParseText("rlft.job { seed = abc, lr = -1, device = tpu, ok = maybe }");
        Assert.StartsWith("rlft.job.seed: expected an integer, got 'abc'", Assert.Throws<ConfigException>(() => c.GetInt("rlft.job.seed")).Message);
        Assert.StartsWith("rlft.job.lr: -1 is outside [0,", Assert.Throws<ConfigException>(() => c.GetDouble("rlft.job.lr", min: 0)).Message);
        Assert.StartsWith("rlft.job.device: 'tpu' is not one of auto, cpu, cuda", Assert.Throws<ConfigException>(() => c.GetEnum("rlft.job.device", ["auto", "cpu", "cuda"])).Message);
        Assert.StartsWith("rlft.job.ok: expected true or false", Assert.Throws<ConfigException>(() => c.GetBool("rlft.job.ok")).Message);
        Assert.StartsWith("rlft.job.name: missing required key", Assert.Throws<ConfigException>(() => c.GetString("rlft.job.name")).Message);
    }

    [Fact]
    public void Defaults_apply_only_when_the_key_is_absent()
    {
        var c = RlftConfig.ParseText("a { x = 3 }");
        Assert.Equal(3, c.GetInt("a.x", 7));
        Assert.Equal(7, c.GetInt("a.y", 7));
        Assert.Equal(0.5, c.GetDouble("a.z", 0.5));
    }

    [Fact]
    public void Unknown_keys_are_refused_with_their_path()
    {
        var c = RlftConfig.ParseText("rlft.job { seed = 1, sed = 2 }");
        var e = Assert.Throws<ConfigException>(() => c.RejectUnknownKeys("rlft.job", ["seed", "name"]));
        Assert.StartsWith("rlft.job.sed: unknown key", e.Message);
    }

    [Fact]
    public void Lists_of_objects_report_indexed_paths()
    {
        var c = RlftConfig.ParseText("stages = [ { kind = sft }, { kind = 3 } ]");
        var stages = c.GetObjectList("stages");
        Assert.Equal(2, stages.Count);
        Assert.Equal("sft", stages[0].GetString("kind"));
        Assert.Contains("stages[1]", stages[1].Source);
    }

    [Fact]
    public void Includes_resolve_relative_to_the_including_file()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-conf").FullName;
        File.WriteAllText(Path.Combine(dir, "base.conf"), "x = 1\ny = 2");
        File.WriteAllText(Path.Combine(dir, "job.conf"), "include \"base.conf\"\ny = 5");
        var c = RlftConfig.LoadFile(Path.Combine(dir, "job.conf"));
        Assert.Equal(1, c.GetInt("x"));
        Assert.Equal(5, c.GetInt("y"));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Missing_files_and_broken_hocon_are_named()
    {
        Assert.Contains("config file not found", Assert.Throws<ConfigException>(() => RlftConfig.LoadFile("/nonexistent/job.conf")).Message);
        string dir = Directory.CreateTempSubdirectory("rlft-conf").FullName;
        string bad = Path.Combine(dir, "bad.conf");
        File.WriteAllText(bad, "a { b = [1, 2 }\n}}}");
        Assert.Contains("bad.conf", Assert.Throws<ConfigException>(() => RlftConfig.LoadFile(bad)).Message);
        Directory.Delete(dir, true);
    }

    [Theory]
    [InlineData("a { b = [1, 2 }", "line 1: '}' closes the '[' opened on line 1")]
    [InlineData("a {\n b = 1", "line 1: '{' is never closed")]
    [InlineData("a = 1 }", "'}' without a matching '{'")]
    [InlineData("a = \"open", "unterminated string")]
    public void Unbalanced_brackets_are_reported_with_their_line_not_hung_on(string text, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => RlftConfig.ParseText(text, "job.conf"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("job.conf: ", e.Message);
    }

    [Fact]
    public void Brackets_inside_strings_and_comments_are_ignored()
    {
        var c = RlftConfig.ParseText("# a { comment [\n// another ]\na = \"x { [ y\"\nb = \"\"\"multi\n line ]\"\"\"");
        Assert.Equal("x { [ y", c.GetString("a"));
    }

    [Fact]
    public void A_job_path_that_is_not_a_file_here_names_a_shipped_preset()
    {
        string preset = Path.Combine(RlftConfig.HoconDirectory, "quickstart.conf");
        Assert.Equal(preset, RlftConfig.ResolvePath("quickstart"));
        Assert.Equal(preset, RlftConfig.ResolvePath("quickstart.conf"));
        Assert.True(File.Exists(RlftConfig.ResolvePath("hocon/quickstart.conf")));
        // A file that exists is taken as given; a name that is neither stays as it was, for the caller to report.
        string mine = Path.Combine(Directory.CreateTempSubdirectory("rlft-cfg").FullName, "quickstart.conf");
        File.WriteAllText(mine, "rlft.job.name = mine");
        Assert.Equal(mine, RlftConfig.ResolvePath(mine));
        Assert.Equal("no-such-preset", RlftConfig.ResolvePath("no-such-preset"));
        Assert.Equal("/no/such/file.conf", RlftConfig.ResolvePath("/no/such/file.conf"));
        var error = Assert.Throws<ConfigException>(() => RlftConfig.LoadFile("no-such-preset"));
        Assert.Contains("no-such-preset", error.Message);
    }
}
