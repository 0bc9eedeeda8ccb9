using System.Text.Json.Nodes;
using Rlft.Actors.Configuration;

namespace Rlft.Tests.Reward;

/// <summary>`rlft score` end to end through the command line entry point.</summary>
public sealed class ScoreCommandTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("rlft-score").FullName;

    public void Dispose() => Directory.Delete(dir, true);

    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    string Write(string name, string text)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    static string RepositoryRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "RLFT.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    static string Example(string file) => Path.Combine(RlftConfig.HoconDirectory, "rewards", file);

    [Fact]
    public void The_example_prints_every_component_and_the_total_for_each_line()
    {
        string input = Path.Combine(RepositoryRoot(), "hocon", "rewards", "example.jsonl");
        var (code, output, err) = Run("score", "--rewards", Example("example.conf"), "--input", input);
        Assert.True(code == 0, err);
        var lines = output.Trim().Split('\n').Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(6, lines.Count);
        Assert.Equal([1, 2, 3, 4, 5, 6], lines.Select(l => (int)l["line"]!));
        foreach (var l in lines)
        {
            Assert.Equal(["correct", "format", "brevity", "repetition", "polite"], l["components"]!.AsObject().Select(kv => kv.Key));
            double sum = l["components"]!.AsObject().Sum(kv => (double)kv.Value!["weighted"]!);
            Assert.Equal(Math.Clamp(sum, -5, 5), (double)l["total"]!, 9);
        }
        Assert.Equal(1.0, (double)lines[1]["components"]!["correct"]!["raw"]!); // "1,000" against "1000"
        Assert.Equal(0.0, (double)lines[2]["components"]!["correct"]!["raw"]!); // 13 against 12
        Assert.Equal("no reference answer", (string)lines[4]["components"]!["correct"]!["failure"]!);
        Assert.Equal(-0.8, (double)lines[4]["components"]!["repetition"]!["raw"]!, 12);
    }

    [Fact]
    public async Task A_remote_scorer_and_dropped_lines_appear_in_the_output_file()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ScorerServer.StartAsync(ct);
        string spec = Write("spec.conf", $$"""
            rewards {
              components = [
                { name = remote, source = http, url = "{{server.Url("score")}}", timeout-seconds = 10, retries = 0 }
                { name = exact, source = exact-match, weight = 2 }
              ]
            }
            """);
        string input = Write("in.jsonl", """
            {"prompt": "a", "completion": "Forty  Two", "answer": "forty two"}

            {"prompt": "b", "completion": "bad", "answer": "x"}
            {"prompt": "c", "completion": "7", "answer": 7}
            """);
        string outFile = Path.Combine(dir, "out.jsonl");
        var (code, output, err) = Run("score", "--rewards", spec, "--input", input, "--output", outFile);
        Assert.True(code == 0, err);
        Assert.Contains("scored 3 lines (1 dropped)", output);
        var lines = File.ReadAllLines(outFile).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal([1, 3, 4], lines.Select(l => (int)l["line"]!));
        Assert.Equal(10 + 2, (double)lines[0]["total"]!);
        Assert.Null(lines[1]["total"]);
        Assert.Equal("remote: scorer returned null", (string)lines[1]["dropped"]!);
        Assert.Equal(1 + 2, (double)lines[2]["total"]!);
    }

    [Theory]
    [InlineData("rewards { components = [ { source = length, target = 5, weight = -2 } ] }", "{\"prompt\":\"p\",\"completion\":\"c\"}", "rlft: rewards.components[0].weight: -2 is outside [0,")]
    [InlineData("rewards { components = [ { source = length, target = 5 } ] }", "{\"prompt\":\"p\"}", ":1: missing \"completion\"")]
    [InlineData("rewards { components = [ { source = length, target = 5 } ] }", "{\"prompt\":\"p\",\"completion\":\"c\"}\n{oops", ":2: invalid JSON")]
    [InlineData("rewards { components = [ { source = length, target = 5 } ] }", "{\"prompt\":\"p\",\"completion\":3}", ":1: \"completion\" must be a string")]
    public void Bad_specs_and_inputs_fail_with_one_line_and_write_nothing(string spec, string input, string expected)
    {
        string outFile = Path.Combine(dir, "out.jsonl");
        var (code, output, err) = Run("score", "--rewards", Write("spec.conf", spec), "--input", Write("in.jsonl", input), "--output", outFile);
        Assert.NotEqual(0, code);
        Assert.Equal("", output);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains(expected, err);
        Assert.False(File.Exists(outFile));
    }

    [Fact]
    public void Missing_files_are_named()
    {
        var (code, _, err) = Run("score", "--rewards", Example("example.conf"), "--input", Path.Combine(dir, "none.jsonl"));
        Assert.Equal(2, code);
        Assert.StartsWith("rlft: input file not found:", err);
        var noSpec = Run("score", "--rewards", Path.Combine(dir, "none.conf"), "--input", Write("in.jsonl", "{}"));
        Assert.StartsWith("rlft: config file not found:", noSpec.Err);
    }
}
