using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Policy.Benchmarks;
using static Rlft.Policy.Benchmarks.BenchTiming;

namespace Rlft.Host.Bench;

/// <summary>
/// Real jobs at real shapes (issue 16, item 7): each configuration of <see cref="Grid"/> is a one-stage job (3 steps,
/// batch 8, 32 new tokens, the built-in task's data) on a random checkpoint of the preset, run by <c>rlft run</c>'s
/// own path in a process of its own (<c>rlft bench-case job</c>, <see cref="ScaleJobCase"/>): one line
/// <c>scale/job/SHAPE/KIND-MODE[-checkpointed]</c> with its peak resident memory, bytes per parameter, the step split
/// into generate / score / train, tokens/s and the train step's estimated GFLOP/s next to the process's fp32 matmul.
/// A configuration the job reader refuses keeps its line, with the reader's message as <c>error</c>. Then
/// <c>scale/jobs</c>: the grid's wall time. --large adds Qwen2-1.5B; --quick runs a tiny GPT-2 in this process, one step.
/// </summary>
internal sealed class ScaleJobsBenchmark : IBenchmark
{
    public string Name => "scale-jobs";
    /// <summary>9–14 minutes on two cores (516 s idle, 832 s shared with other work), 2.4 GB of checkpoints in $TMPDIR and a 2 GB final checkpoint per Qwen2-0.5B job: only with --only.</summary>
    public bool OnlyWhenNamed => true;

    /// <summary>The full grid, in run order (the qwen2-1.5b rows only with --large).</summary>
    public static readonly (string Shape, string Kind, bool Lora, bool Checkpointing)[] Grid =
    [
        ("gpt2-124m", "ppo", false, false),
        ("gpt2-124m", "ppo", true, false),
        ("gpt2-124m", "grpo", true, false),
        ("gpt2-124m", "dpo", true, false),
        ("gpt2-124m", "dpo", false, false),
        ("gpt2-124m", "sft", false, false),
        ("gpt2-124m", "sft", false, true),
        ("qwen2-0.5b", "ppo", true, false),
        ("qwen2-0.5b", "ppo", true, true),
        ("qwen2-0.5b", "dpo", true, false),
        ("qwen2-0.5b", "sft", true, false),
        ("qwen2-1.5b", "ppo", true, true),
    ];

    /// <summary>--quick: every kind and both modes once, on the tiny GPT-2, one step each.</summary>
    static readonly (string Shape, string Kind, bool Lora, bool Checkpointing)[] QuickGrid =
    [
        ("tiny", "ppo", false, false),
        ("tiny", "grpo", true, false),
        ("tiny", "dpo", false, false),
        ("tiny", "sft", false, true),
    ];

    public static string LineName(string shape, string kind, bool lora, bool checkpointing) =>
        $"scale/job/{shape}/{kind}-{(lora ? "lora" : "full")}{(checkpointing ? "-checkpointed" : "")}";

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        var grid = options.Quick ? QuickGrid : Grid.Where(g => options.Large || g.Shape != "qwen2-1.5b").ToArray();
        var total = Stopwatch.StartNew();
        int failed = 0;
        foreach (var (shape, kind, lora, checkpointing) in grid)
        {
            var sw = Stopwatch.StartNew();
            var line = options.Quick
                ? InProcess(shape, kind, lora, checkpointing)
                : BenchCases.RunChild(["bench-case", "job", "--model", BenchCases.ModelDirectory(shape), "--kind", kind, "--mode", lora ? "lora" : "full",
                    .. checkpointing ? new[] { "--checkpointing" } : []]);
            if (line.ContainsKey("error")) failed++;
            var named = new JsonObject { ["name"] = LineName(shape, kind, lora, checkpointing), ["shape"] = shape };
            foreach (var (k, v) in line) named[k] = v?.DeepClone();
            named["wall_s"] = Round(sw.Elapsed.TotalSeconds, 1);
            yield return named;
        }
        double seconds = total.Elapsed.TotalSeconds;
        yield return new JsonObject
        {
            ["name"] = "scale/jobs", ["configurations"] = grid.Length, ["failed"] = failed, ["total_s"] = Round(seconds, 1),
            ["budget_s"] = Budget, ["threads"] = TorchSharp.torch.get_num_threads(),
            ["peak_rss_note"] = options.Quick ? "quick: in the bench process, shared by every configuration" : "each configuration in a process of its own",
        }.WithRatio(seconds / Budget, "grid wall seconds / 720 s (the grid's budget on 2 cores)");
    }

    const double Budget = 720;

    /// <summary>Quick: the tiny GPT-2 (built once into the bench cache), one step of 4 rows and 8 new tokens, in this process.</summary>
    static JsonObject InProcess(string shape, string kind, bool lora, bool checkpointing) => ScaleJobCase.Run(
        new ScaleJobCase.Settings(BenchCases.ModelDirectory(shape, "gpt2"), kind, lora, checkpointing, Steps: 1, Batch: 4, NewTokens: 8), Path.GetTempPath());
}
