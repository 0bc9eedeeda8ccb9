using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Actors.Jobs;
using Rlft.Policy.Benchmarks;
using Rlft.Policy.Memory;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using static Rlft.Policy.Benchmarks.BenchTiming;

namespace Rlft.Host.Bench;

/// <summary>
/// One configuration of <c>rlft bench --only scale-jobs</c>, run as a user runs it: a one-stage job file (the built-in
/// task's data, the model from a checkpoint directory) handed to <c>rlft run</c> in this process, so it goes through
/// JobSpecReader, JobValidator, the memory check and the one-process runtime. <c>rlft bench-case job</c> runs it in a
/// process of its own, so that the peak resident memory (VmHWM at the end) is the job's.
/// <para>
/// Figures from the run's metrics.jsonl: <c>timing/generate</c>, <c>timing/score</c> and <c>timing/train</c> per online
/// step (<c>timing/step</c> for an offline one, which has no rollouts), <c>rollout/tokens_per_second</c>, and
/// <c>train/tokens</c>, the sequence tokens the update trains on per pass. Per-step figures are the mean of the steps
/// after the first (the first warms up), all steps when there is one.
/// </para>
/// <para>
/// Train FLOPs ≈ k · N · T · passes: k = 6 for full fine-tuning (forward 2, backward 4: the activations' and the
/// weights' gradients), 4 with LoRA (the frozen weights get no gradient; the adapters' own work is negligible); N the
/// model's parameters (tied embeddings once: each is used in a matmul per token, but for GPT-2's position table),
/// T = <c>train/tokens</c>, passes = PPO/GRPO epochs (1 for DPO and SFT). Forward-only passes (reference, old log-probs,
/// values) and attention's T² term are not counted: the achieved GFLOP/s is a lower bound of the work done. It stands
/// next to the best fp32 2048³ matmul of this process, measured right before and right after the job.
/// </para>
/// The job runs with <c>max-policy-lag = 0</c> (generation and training take turns, so the split adds up to the step),
/// PPO with one epoch (as the README's memory table was measured; GRPO's default is one), LoRA r16 on the default
/// targets (the attention projections), <c>eval-prompts = 1</c> and small held-out files (the evaluations before and
/// after a stage are not what is measured).
/// </summary>
internal static class ScaleJobCase
{
    public sealed record Settings(string ModelDir, string Kind, bool Lora, bool Checkpointing, int Steps = 3, int Batch = 8, int NewTokens = 32, int LoraRank = 16);

    public static readonly string[] Kinds = ["ppo", "grpo", "dpo", "sft"];
    const string JobName = "scale-job";
    const int HeldOut = 8, EvalPrompts = 1, MatmulSize = 2048;

    /// <summary>The job file of <paramref name="s"/>; <paramref name="evalData"/> is the offline stage's held-out file.</summary>
    public static string JobText(Settings s, string outputDir, string? evalData)
    {
        static string Q(string path) => JsonSerializer.Serialize(path);
        // One key per line: the HOCON reader takes no comma after an object's closing brace.
        string rows = $"steps = {s.Steps}\n    batch-size = {s.Batch}";
        string online = $"sampling {{ max-new-tokens = {s.NewTokens} }}\n    rewards {{ sources = [ {{ type = task }} ] }}";
        string stage = s.Kind switch
        {
            "ppo" => $"kind = ppo\n    data = \"builtin:prompts\"\n    {rows}\n    {online}\n    ppo {{ epochs = 1 }}",
            "grpo" => $"kind = grpo\n    data = \"builtin:prompts\"\n    {rows}\n    {online}\n    grpo {{ group-size = 4 }}",
            "dpo" => $"kind = dpo\n    data = \"builtin:preferences\"\n    eval-data = {Q(evalData!)}\n    {rows}",
            "sft" => $"kind = sft\n    data = \"builtin:sft\"\n    eval-data = {Q(evalData!)}\n    {rows}",
            _ => throw new ArgumentException($"unknown kind '{s.Kind}' (expected {string.Join(", ", Kinds)})"),
        };
        return $$"""
            rlft.job {
              name = {{JobName}}
              seed = 1
              output-dir = {{Q(outputDir)}}
              model { path = {{Q(s.ModelDir)}} }
              max-policy-lag = 0
              eval-prompts = {{EvalPrompts}}
              gradient-checkpointing = {{(s.Checkpointing ? "on" : "off")}}
            {{(s.Lora ? $"  lora {{ rank = {s.LoraRank}, alpha = {2 * s.LoraRank} }}" : "")}}
              stages = [ {
                {{stage}}
              } ]
            }
            """;
    }

    /// <summary>Runs the configuration in a fresh folder under <paramref name="workDir"/> (deleted after) and returns its line.</summary>
    public static JsonObject Run(Settings s, string workDir)
    {
        string dir = Path.Combine(workDir, $"rlft-scale-job-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(dir);
        try { return RunIn(s, dir); }
        finally { Directory.Delete(dir, true); }
    }

    static JsonObject RunIn(Settings s, string dir)
    {
        string? evalData = s.Kind switch
        {
            "dpo" => HeldOutFile(dir, "preferences"),
            "sft" => HeldOutFile(dir, "sft"),
            _ => null,
        };
        string jobPath = Path.Combine(dir, "job.conf");
        File.WriteAllText(jobPath, JobText(s, Path.Combine(dir, "runs"), evalData));
        double matmul = PolicyBenchmarks.MatmulGflops(MatmulSize, 3);
        var (output, errors) = (new StringWriter(), new StringWriter());
        var sw = Stopwatch.StartNew();
        int code = Rlft.Host.Commands.Cli.Run(["run", jobPath], output, errors);
        double wall = sw.Elapsed.TotalSeconds;
        double peak = QloraPpoCase.PeakResidentMiB();
        if (code != 0)
        {
            // A job that ran and failed says why in its "rlft: FAILED: …" line; a refused one on stderr.
            string? failed = output.ToString().Split('\n').FirstOrDefault(l => l.StartsWith("rlft: FAILED", StringComparison.Ordinal))?.Trim();
            return new JsonObject { ["error"] = $"rlft run exited {code}: {failed ?? LastLine(errors.ToString()) ?? LastLine(output.ToString())}", ["peak_rss_mib"] = Round(peak, 0) };
        }
        matmul = Math.Max(matmul, PolicyBenchmarks.MatmulGflops(MatmulSize, 3));

        var spec = JobSpec.Load(jobPath);
        var stage = spec.Stages[0];
        var config = ModelConfig.Load(Path.Combine(s.ModelDir, "config.json"));
        var shape = ModelShape.Of(config, spec.Lora, new QuantizationOptions());
        var steps = Steps(Path.Combine(spec.RunDirectory, "metrics.jsonl"));
        if (steps.Count == 0) return new JsonObject { ["error"] = "the run wrote no step to metrics.jsonl" };
        bool online = stage.IsOnline;
        double Steady(string key) => Mean(steps.Skip(steps.Count > 1 ? 1 : 0).Select(m => m.GetValueOrDefault(key)));
        double generate = online ? Steady("timing/generate") : 0, score = online ? Steady("timing/score") : 0;
        double train = Steady(online ? "timing/train" : "timing/step");
        double tokens = Steady("train/tokens");
        int passes = stage.Kind switch { StageKind.Ppo => stage.Ppo.Epochs, StageKind.Grpo => stage.Grpo.Epochs, _ => 1 };
        int k = s.Lora ? 4 : 6;
        double gflops = train > 0 ? k * (double)shape.Parameters * tokens * passes / train / 1e9 : 0;
        long estimate = JobMemory.Estimate(spec).Total;
        var line = new JsonObject
        {
            ["kind"] = s.Kind, ["mode"] = s.Lora ? "lora" : "full", ["gradient_checkpointing"] = s.Checkpointing,
            ["model_type"] = config.ModelType, ["layers"] = config.NumLayers, ["hidden"] = config.HiddenSize, ["vocab"] = config.VocabSize,
            ["parameters"] = shape.Parameters, ["trainable_parameters"] = s.Lora ? shape.LoraParameters : shape.Parameters,
            ["steps"] = steps.Count, ["batch"] = s.Batch, ["new_tokens"] = online ? s.NewTokens : 0, ["passes"] = passes,
            ["peak_rss_mib"] = Round(peak, 0), ["bytes_per_parameter"] = Round(peak * (1 << 20) / shape.Parameters, 2),
            ["estimate_mib"] = Round(estimate / (double)(1 << 20), 0), ["peak_over_estimate"] = Round(peak * (1 << 20) / estimate, 3),
            ["generate_s"] = Round(generate, 3), ["score_s"] = Round(score, 4), ["train_s"] = Round(train, 3), ["step_s"] = Round(generate + score + train, 3),
            ["train_s_per_step"] = new JsonArray(steps.Select(m => (JsonNode)Round(m.GetValueOrDefault(online ? "timing/train" : "timing/step"), 3)).ToArray()),
            ["train_tokens"] = Round(tokens, 0),
            ["train_tokens_per_s"] = Round(train > 0 ? tokens * passes / train : 0, 1),
            ["generate_tokens_per_s"] = Round(online ? Steady("rollout/tokens_per_second") : 0, 1),
            ["train_gflops"] = Round(gflops, 2), ["matmul_gflops"] = Round(matmul, 1),
            ["flops_formula"] = $"{k} x parameters x train_tokens x passes",
            ["run_s"] = Round(wall, 1),
        };
        return line.WithRatio(gflops / matmul, "train GFLOP/s (estimated FLOPs) / fp32 matmul GFLOP/s");
    }

    /// <summary>The last <see cref="HeldOut"/> records of a built-in dataset, as the offline stage's eval-data (its figures before and after are not the bench's).</summary>
    static string HeldOutFile(string dir, string builtin)
    {
        string all = DataResolver.Resolve($"builtin:{builtin}", Path.Combine(dir, "source"), 1, "bench");
        string path = Path.Combine(dir, $"held-out-{builtin}.jsonl");
        File.WriteAllLines(path, File.ReadLines(all).Where(l => l.Length > 0).TakeLast(HeldOut));
        return path;
    }

    /// <summary>The training steps' metrics (evaluation lines left out), in order.</summary>
    static List<Dictionary<string, double>> Steps(string metricsPath)
    {
        var steps = new List<Dictionary<string, double>>();
        foreach (var l in File.ReadLines(metricsPath))
        {
            using var doc = JsonDocument.Parse(l);
            if (doc.RootElement.TryGetProperty("eval", out _)) continue;
            steps.Add(doc.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Number).ToDictionary(p => p.Name, p => p.Value.GetDouble()));
        }
        return steps;
    }

    static double Mean(IEnumerable<double> values) => values.DefaultIfEmpty(0).Average();

    static string? LastLine(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Trim();
}
