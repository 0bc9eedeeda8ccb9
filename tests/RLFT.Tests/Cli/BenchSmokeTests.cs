using System.Text.Json;

namespace Rlft.Tests.Cli;

/// <summary>The runtime benchmarks run end to end and print their figures (no speed is asserted here).</summary>
public class BenchSmokeTests
{
    /// <summary>Each suite runs once; every expectation is "line-name:figure".</summary>
    [Theory]
    [InlineData("weight-sync", "weight-sync/full-loopback:megabytes_per_second", "weight-sync/adapter-loopback:p50_ms")]
    [InlineData("actors", "actors/ppo-job-lag0:steady_state_ratio", "actors/ppo-job-lag1:throughput_ratio")]
    [InlineData("feedback", "feedback/ratings:ratings_per_s")]
    [InlineData("qlora", "qlora/quantization-error:nf4_over_uniform_int4", "qlora/logprob-drift/nf4:mean_abs_token_logprob_diff", "qlora/ppo/small/nf4:bytes_per_quantized_weight",
        "qlora/ppo/small/compared:nf4_over_fp32_base_mib")]
    public void Quick_runtime_benchmarks_print_a_json_line_with_their_figure(string suite, params string[] expected)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(["bench", "--quick", "--only", suite], o, e);
        Assert.True(code == 0, e.ToString());
        var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('{'))
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (var (name, figure) in expected.Select(x => (x.Split(':')[0], x.Split(':')[1])))
        {
            var line = Assert.Single(lines, l => l.GetProperty("name").GetString() == name);
            Assert.True(line.GetProperty(figure).GetDouble() > 0, $"{name}.{figure}");
        }
    }
}
