using Rlft.Host.Commands;

namespace Rlft.Tests.Cli;

public class CliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Info_prints_versions_threads_cuda_and_backend()
    {
        var (code, output, _) = Run("info");
        Assert.Equal(0, code);
        foreach (var field in new[] { "rlft ", "dotnet ", "torchsharp ", "libtorch ", "backend ", "threads ", "cuda " })
            Assert.Contains(field, output);
        Assert.Contains("backend     cpu", output);
    }

    [Fact]
    public void Device_check_runs_every_check_on_the_CPU_and_sums_them_up_in_its_last_line()
    {
        string file = Path.Combine(Directory.CreateTempSubdirectory("rlft-device-check").FullName, "checks.jsonl");
        var (code, output, _) = Run("device-check", "--device", "cpu", "--shapes", "tiny", "--batch", "2", "--length", "32", "--steps", "1", "--output", file);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!).ToList();
        Assert.Equal(["runtime", "logits/device-vs-cpu", "grad/bf16-vs-fp32", "generate/kv-cache", "train/tiny", "summary"], lines.Select(l => (string)l["name"]!));
        Assert.All(lines.SkipLast(1), l => Assert.True((bool)l["ok"]!, l.ToJsonString()));
        Assert.Equal(0, code);
        Assert.Equal(5, (int)lines[^1]["passed"]!);
        // The learner's bf16 path agrees with fp32 on the same device; the train line carries its own roofline.
        Assert.True((double)lines[2]["gradient_cosine"]! > 0.99);
        Assert.True((double)lines[4]["tflops"]! > 0 && (double)lines[4]["matmul_tflops"]! > 0);
        Assert.Equal(6, File.ReadAllLines(file).Length);

        var (refused, refusal, _) = Run("device-check", "--device", "cuda:7", "--shapes", "");
        Assert.Equal(1, refused);
        Assert.Contains("\"name\":\"device\",\"ok\":false", refusal);
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("info", "--bogus")]
    [InlineData("--nope")]
    public void Unknown_commands_and_options_fail_with_one_line(params string[] args)
    {
        var (code, output, err) = Run(args);
        Assert.NotEqual(0, code);
        Assert.Equal("", output);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains(args[^1], err);
    }

    [Fact]
    public void Version_and_help_succeed()
    {
        var (code, output, _) = Run("--version");
        Assert.Equal(0, code);
        Assert.Matches(@"^\d+\.\d+\.\d+", output.Trim());
        var help = Run("--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("info", help.Out);
    }
}
