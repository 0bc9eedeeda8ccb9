using System.Text.Json;

namespace Rlft.Tests.Cli;

/// <summary>The runtime benchmarks run end to end and print their figures (no speed is asserted here).</summary>
public class BenchSmokeTests
{
    /// <summary>Each suite runs once; every expectation is "line-name:figure".</summary>
    [Theory]
    [InlineData("weight-sync", "weight-sync/full-loopback:megabytes_per_second", "weight-sync/adapter-loopback:p50_ms", "weight-sync/full-stream:megabytes_per_second", "weight-sync/adapter-stream:p90_ms")]
    [InlineData("actors", "actors/ppo-job-lag0:steady_state_ratio", "actors/ppo-job-lag1:throughput_ratio")]
    [InlineData("feedback", "feedback/ratings:ratings_per_s")]
    [InlineData("decode", "decode/gpt2-124m:speedup", "decode/qwen2-0.5b:gb_per_s", "decode/qwen2-0.5b-nf4:libtorch_ms_per_step")]
    [InlineData("qlora", "qlora/quantization-error:nf4_over_uniform_int4", "qlora/logprob-drift/nf4:mean_abs_token_logprob_diff", "qlora/ppo/small/nf4:bytes_per_quantized_weight",
        "qlora/ppo/small/nf4-checkpointed:train_s_median", "qlora/ppo/small/compared:nf4_over_fp32_base_mib")]
    [InlineData("scale-jobs", "scale/job/tiny/ppo-full:generate_s", "scale/job/tiny/ppo-full:train_gflops", "scale/job/tiny/grpo-lora:peak_rss_mib",
        "scale/job/tiny/dpo-full:train_tokens_per_s", "scale/job/tiny/sft-full-checkpointed:bytes_per_parameter", "scale/jobs:total_s")]
    public void Quick_runtime_benchmarks_print_a_json_line_with_their_figure(string suite, params string[] expected) => Check(suite, expected);

    /// <summary>Runs <c>rlft bench --quick --only <paramref name="suite"/></c> and checks its lines ("line-name:figure" each positive).</summary>
    internal static void Check(string suite, params string[] expected)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(["bench", "--quick", "--only", suite], o, e);
        Assert.True(code == 0, e.ToString());
        var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('{'))
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (var (name, figure) in expected.Select(x => (x.Split(':')[0], x.Split(':')[1])))
        {
            var named = lines.Where(l => l.GetProperty("name").GetString() == name).ToList();
            Assert.True(named.Count == 1, $"{named.Count} lines named {name} among: "
                + string.Join(", ", lines.Select(l => l.GetProperty("name").GetString() + (l.TryGetProperty("error", out var error) ? $" ({error})" : ""))));
            var line = named[0];
            Assert.True(line.GetProperty(figure).GetDouble() > 0, $"{name}.{figure}");
        }
        // Every line carries its headline ratio beside its absolute figures (the qlora case lines compare in their summary line).
        foreach (var line in lines.Where(l => !l.GetProperty("name").GetString()!.StartsWith("qlora/ppo/", StringComparison.Ordinal) || l.GetProperty("name").GetString()!.EndsWith("/compared")))
            Assert.True(line.TryGetProperty("ratio", out var r) && r.ValueKind == JsonValueKind.Number && line.TryGetProperty("ratio_of", out _), $"{line.GetProperty("name")} has no ratio");
        // A healthy run logs no errors and no stack traces.
        string all = o.ToString() + e.ToString();
        Assert.DoesNotContain("   at ", all);
        Assert.DoesNotContain("[ERROR]", all);
        foreach (var line in lines.Where(l => l.TryGetProperty("error_log_lines", out _)))
            Assert.Equal(0, line.GetProperty("error_log_lines").GetInt32());
    }

    [Theory]
    [InlineData("scale", "scale")]                        // not also scale-jobs, which contains the text
    [InlineData("scale-jobs", "scale-jobs")]
    [InlineData("POLICY", "policy")]                      // exact, case-insensitive: not also policy-memory
    [InlineData("polic", "policy,policy-memory")]         // no suite of that name: every suite containing it
    [InlineData("pass", "behaviour-pass")]                // a suite that runs only when named, named by part
    [InlineData("actors,scale", "scale,actors")]          // several: in run order, each exact where it can be
    [InlineData("scale, polic,decode", "policy,policy-memory,decode,scale")]
    public void Only_runs_the_suites_of_those_names_or_else_every_suite_containing_the_text(string filter, string expected)
    {
        var names = Rlft.Host.Commands.BenchCommand.Select(Rlft.Host.Commands.BenchCommand.Benchmarks(), filter).Select(b => b.Name);
        Assert.Equal(expected.Split(','), names);
        // Without --only: every suite but those that run only when named.
        var all = Rlft.Host.Commands.BenchCommand.Select(Rlft.Host.Commands.BenchCommand.Benchmarks(), null).Select(b => b.Name).ToList();
        Assert.Contains("decode", all);
        Assert.DoesNotContain("scale-jobs", all);
    }

    [Fact]
    public void Compare_prints_the_change_of_every_ratio_between_two_saved_runs()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-bench-compare").FullName;
        try
        {
            File.WriteAllLines(Path.Combine(dir, "old.jsonl"), ["""{"name":"train/step","gflops":40,"fraction_of_matmul":0.2,"ratio":0.2}"""]);
            File.WriteAllLines(Path.Combine(dir, "new.jsonl"), ["""{"name":"train/step","gflops":90,"fraction_of_matmul":0.3,"ratio":0.3}"""]);
            var o = new StringWriter();
            var e = new StringWriter();
            int code = Rlft.Host.Commands.Cli.Run(["bench", "--compare", Path.Combine(dir, "old.jsonl"), "--against", Path.Combine(dir, "new.jsonl")], o, e);
            Assert.True(code == 0, e.ToString());
            var rows = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, rows.Count(r => r.StartsWith("train/step") && r.TrimEnd().EndsWith("+50.0%")));
            Assert.NotEqual(0, Rlft.Host.Commands.Cli.Run(["bench", "--compare", Path.Combine(dir, "missing.jsonl")], o, e));
            Assert.Contains("missing.jsonl does not exist", e.ToString());
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>
/// The learners suite sets libtorch's thread count while its members run (one per member), which changes how other tests'
/// kernels split their sums: it runs apart from every other test.
/// </summary>
[Collection(Cluster.ProcessTests.Name)]
public class LearnersBenchSmokeTests
{
    [Fact]
    public void The_learners_bench_prints_its_all_reduce_train_step_and_process_lines() =>
        BenchSmokeTests.Check("learners", "learners/all-reduce/tcp/2:mb_per_s", "learners/all-reduce/in-process/3:bus_mb_per_s", "learners/train-step/2:samples_per_s",
            "learners/process-step/1-on-1-cpu:samples_per_s", "learners/process-step/2:all_reduce_mb_per_s", "learners/process-step/3:samples_per_s");
}
