using Rlft.Policy.Benchmarks;

namespace Rlft.Tests.Platform;

public class BenchComparisonTests
{
    [Fact]
    public void Every_ratio_present_in_both_runs_is_compared_with_its_change_and_other_lines_are_named()
    {
        var old = BenchComparison.Read([
            """{"name":"generate/kv-cache","tokens_per_s":1000,"fraction_of_matmul":0.13}""",
            "an Akka log line that is not JSON",
            """{"name":"batching/continuous","tokens_per_s":900,"ratio":1.6,"ratio_of":"continuous ÷ static"}""",
            """{"name":"gone/line","ratio":2}""",
        ]);
        var now = BenchComparison.Read([
            """{"name":"generate/kv-cache","tokens_per_s":5000,"fraction_of_matmul":0.26,"ratio":0.26}""",
            """{"name":"batching/continuous","tokens_per_s":700,"ratio":2.0,"ratio_of":"continuous ÷ static"}""",
            """{"name":"new/line","ratio":1}""",
        ]);
        var rows = BenchComparison.Describe(old, now).ToList();
        Assert.StartsWith("name", rows[0]);
        // The fraction doubled; the new headline has no old counterpart; tokens/s is absolute and not compared.
        Assert.Contains(rows, r => r.StartsWith("generate/kv-cache") && r.Contains("fraction_of_matmul") && r.Contains("0.13") && r.Contains("0.26") && r.EndsWith("+100.0%"));
        Assert.DoesNotContain(rows, r => r.Contains("tokens_per_s"));
        Assert.Contains(rows, r => r.StartsWith("batching/continuous") && r.Contains(" ratio ") && r.EndsWith("+25.0%"));
        Assert.Contains("gone/line: only in the old run", rows);
        Assert.Contains("new/line: only in the new run", rows);
        Assert.Equal(5, rows.Count);
    }

    [Theory]
    [InlineData(2.0, 1.0, "-50.0%")]
    [InlineData(0.5, 0.5, "+0.0%")]
    [InlineData(0.0, 0.3, "n/a")]
    public void The_change_is_new_over_old_minus_one(double old, double now, string expected) =>
        Assert.Equal(expected, BenchComparison.Change(old, now));
}
