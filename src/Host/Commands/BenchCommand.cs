using System.CommandLine;
using Rlft.Policy.Benchmarks;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft bench`: every registered benchmark, one JSON object per line (also into --output). With --compare OLD.jsonl
/// the ratios of this run are set against an earlier run's (<see cref="BenchComparison"/>); with --against NEW.jsonl
/// two saved runs are compared without running anything.
/// </summary>
internal static class BenchCommand
{
    /// <summary>The benchmark suites, in run order; a new suite is one line here.</summary>
    public static IBenchmark[] Benchmarks() =>
    [
        new PolicyBenchmarks(),
        new PolicyBenchmarks.Memory(),
        new DecodeBenchmark(),
        new BatchingBenchmarks(),
        new ScaleBenchmarks(),
        new Bench.ScaleJobsBenchmark(),
        new Bench.ActorOverheadBenchmark(),
        new Bench.WeightSyncBenchmark(),
        new Bench.FeedbackBenchmark(),
        new Bench.QloraBenchmark(),
        new Bench.LearnersBenchmark(),
        new Bench.FederatedBenchmark(),
        new Bench.BehaviourPassBenchmark(),
    ];

    /// <summary>
    /// The suites <c>--only <paramref name="filter"/></c> runs, in run order: for each comma-separated name, the suite
    /// named exactly so where there is one (<c>scale</c> is not also <c>scale-jobs</c>), otherwise every suite whose name
    /// contains the text; without a filter, all but the suites that run only when named.
    /// </summary>
    internal static List<IBenchmark> Select(IEnumerable<IBenchmark> all, string? filter)
    {
        var suites = all.ToList();
        if (filter is null) return suites.Where(b => !b.OnlyWhenNamed).ToList();
        var chosen = new HashSet<IBenchmark>();
        foreach (var name in filter.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var exact = suites.Where(b => b.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).ToList();
            chosen.UnionWith(exact.Count > 0 ? exact : suites.Where(b => b.Name.Contains(name, StringComparison.OrdinalIgnoreCase)));
        }
        return suites.Where(chosen.Contains).ToList();
    }

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "Fewer repetitions and smaller sizes (a smoke run)." };
        var large = new Option<bool>("--large") { Description = "Also the largest shapes where a suite has them (scale-jobs: Qwen2-1.5B; scale: checkpointing at GPT-2 124M, 4 × 1,024)." };
        var only = new Option<string?>("--only") { Description = "Run only the suite of this name, or where none has it, the suites whose name contains this text; several, comma-separated, run in the usual order." };
        var output = new Option<FileInfo?>("--output") { Description = "Also write the JSON lines to this file." };
        var compare = new Option<FileInfo?>("--compare") { Description = "An earlier run's JSON lines: print each ratio's change from it." };
        var against = new Option<FileInfo?>("--against") { Description = "With --compare: compare with this saved run instead of running the benchmarks." };
        var command = new Command("bench", "Run benchmarks; prints one JSON object per line.") { quick, large, only, output, compare, against };
        command.SetAction(result =>
        {
            var o = result.InvocationConfiguration.Output;
            var old = result.GetValue(compare) is { } oldFile ? BenchComparison.Read(ReadLines(oldFile, "--compare")) : null;
            if (result.GetValue(against) is { } newFile)
            {
                if (old is null) throw new CliException("--against needs --compare OLD.jsonl");
                foreach (var row in BenchComparison.Describe(old, BenchComparison.Read(ReadLines(newFile, "--against")))) o.WriteLine(row);
                return 0;
            }
            var options = new BenchOptions(result.GetValue(quick), result.GetValue(large));
            string? filter = result.GetValue(only);
            var suites = Select(Benchmarks(), filter);
            if (suites.Count == 0) throw new CliException($"no benchmark suite matches --only '{filter}'");
            using var file = result.GetValue(output) is { } path ? new StreamWriter(path.FullName) : null;
            var lines = new List<string>();
            foreach (var suite in suites)
                foreach (var line in suite.Run(options))
                {
                    string json = line.ToJsonString();
                    lines.Add(json);
                    o.WriteLine(json);
                    o.Flush();
                    file?.WriteLine(json);
                    file?.Flush();
                }
            if (old is not null)
            {
                o.WriteLine();
                o.WriteLine($"ratios against {result.GetValue(compare)!.Name} (change = new / old - 1):");
                foreach (var row in BenchComparison.Describe(old, BenchComparison.Read(lines))) o.WriteLine(row);
            }
            return 0;
        });
        return command;
    }

    static string[] ReadLines(FileInfo file, string option) =>
        file.Exists ? File.ReadAllLines(file.FullName) : throw new CliException($"{option}: {file.FullName} does not exist");
}
