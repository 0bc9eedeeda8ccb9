using System.CommandLine;
using Rlft.Policy.Benchmarks;

namespace Rlft.Host.Commands;

/// <summary>`rlft bench`: every registered benchmark, one JSON object per line.</summary>
public static class BenchCommand
{
    /// <summary>The benchmark suites, in run order; a new suite is one line here.</summary>
    public static IBenchmark[] Benchmarks() =>
    [
        new PolicyBenchmarks(),
        new PolicyBenchmarks.Memory(),
        new BatchingBenchmarks(),
        new ScaleBenchmarks(),
        new Bench.ActorOverheadBenchmark(),
        new Bench.WeightSyncBenchmark(),
        new Bench.FeedbackBenchmark(),
        new Bench.QloraBenchmark(),
    ];

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "Fewer repetitions and smaller sizes (a smoke run)." };
        var only = new Option<string?>("--only") { Description = "Run only the suites whose name contains this text." };
        var command = new Command("bench", "Run benchmarks; prints one JSON object per line.") { quick, only };
        command.SetAction(result =>
        {
            var options = new BenchOptions(result.GetValue(quick));
            string? filter = result.GetValue(only);
            var suites = Benchmarks().Where(b => filter is null ? !b.OnlyWhenNamed : b.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)).ToList();
            if (suites.Count == 0) throw new CliException($"no benchmark suite matches --only '{filter}'");
            var o = result.InvocationConfiguration.Output;
            foreach (var suite in suites)
                foreach (var line in suite.Run(options))
                {
                    o.WriteLine(line.ToJsonString());
                    o.Flush();
                }
            return 0;
        });
        return command;
    }
}
