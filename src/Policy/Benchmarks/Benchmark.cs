using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Benchmarks;

/// <summary>
/// Settings every benchmark receives: quick mode trims repetitions and sizes for a smoke run; <paramref name="Large"/>
/// adds the largest shapes where a suite has them (they take the most time and memory).
/// </summary>
internal sealed record BenchOptions(bool Quick, bool Large = false);

/// <summary>
/// A named group of measurements for <c>rlft bench</c>. Each yielded object is one JSON line and carries a
/// <c>name</c>, its absolute figures, and a headline <c>ratio</c> with <c>ratio_of</c> saying what it divides
/// (<see cref="BenchTiming.WithRatio"/>): the figure against a reference measured in the same process, which is what
/// stays comparable across machines and loads (<c>rlft bench --compare</c>).
/// </summary>
internal interface IBenchmark
{
    string Name { get; }
    IEnumerable<JsonObject> Run(BenchOptions options);
    /// <summary>True for suites too long (or too large on disk) for a plain <c>rlft bench</c>: they run when --only names them.</summary>
    bool OnlyWhenNamed => false;
}

/// <summary>Small timing helpers shared by benchmarks.</summary>
internal static class BenchTiming
{
    /// <summary>
    /// Seconds a decoding step takes: a whole generation call (<paramref name="whole"/>) less the same call stopped after
    /// its first token (<paramref name="prefill"/>: the prompts' forward pass), over the <paramref name="newTokens"/> − 1
    /// steps left.
    /// </summary>
    public static double DecodeStepSeconds(double whole, double prefill, int newTokens) => Math.Max(1e-9, whole - prefill) / (newTokens - 1);

    /// <summary>Best (minimum) wall time in seconds over <paramref name="repeats"/> runs after one warm-up; 0 = one timed run, no warm-up.</summary>
    public static double Best(int repeats, Action action)
    {
        if (repeats <= 0) repeats = 1; else action();
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>Resident set size of this process in MiB (Linux /proc; falls back to the working set).</summary>
    public static double ResidentMiB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return double.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException) { }
        return Environment.WorkingSet / (1024.0 * 1024.0);
    }

    public static double Round(double x, int digits = 2) => Math.Round(x, digits);

    /// <summary>Adds the line's headline ratio and what it is (e.g. "decode GFLOP/s ÷ matmul GFLOP/s").</summary>
    public static JsonObject WithRatio(this JsonObject line, double ratio, string of)
    {
        line["ratio"] = Math.Round(ratio, 3);
        line["ratio_of"] = of;
        return line;
    }
}
