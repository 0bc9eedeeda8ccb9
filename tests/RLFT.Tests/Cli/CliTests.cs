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
