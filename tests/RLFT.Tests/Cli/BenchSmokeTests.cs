using System.Text.Json;

namespace Rlft.Tests.Cli;

/// <summary>The runtime benchmarks run end to end and print their figures (no speed is asserted here).</summary>
public class BenchSmokeTests
{
    [Theory]
    [InlineData("weight-sync", "megabytes_per_second")]
    [InlineData("actors", "throughput_ratio")]
    public void Quick_runtime_benchmarks_print_a_json_line_with_their_figure(string suite, string figure)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(["bench", "--quick", "--only", suite], o, e);
        Assert.True(code == 0, e.ToString());
        var line = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Single(l => l.StartsWith('{'));
        using var doc = JsonDocument.Parse(line);
        Assert.StartsWith(suite, doc.RootElement.GetProperty("name").GetString());
        Assert.True(doc.RootElement.GetProperty(figure).GetDouble() > 0);
    }
}
