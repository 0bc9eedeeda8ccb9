using System.Text.Json.Nodes;
using Rlft.Policy.Benchmarks;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using static TorchSharp.torch;
using static Rlft.Policy.Benchmarks.BenchTiming;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Host.Bench;

/// <summary>
/// QLoRA's figures. Numerics: the quantization error of NF4 against a uniform 4-bit code and int8 on the same weights,
/// and the log-prob drift of a trained model (a small Qwen2 shape after SFT on the built-in task) quantized against
/// fp32 on held-out text. Cost: dequantization speed next to the matmul it feeds, then LoRA PPO (batch 8, 32 new tokens)
/// on random weights of the Qwen2-0.5B and Qwen2-1.5B shapes with NF4, int8 and no quantization, each configuration in
/// a process of its own (`rlft bench-case qlora`): bytes per base weight, peak resident memory, load, generate and
/// train seconds per step. --quick: the small shape only, in this process, one step. The random checkpoints are kept in
/// $TMPDIR/rlft-bench-models between runs.
/// </summary>
internal sealed class QloraBenchmark : IBenchmark
{
    public string Name => "qlora";
    /// <summary>The full run writes 8 GB of random checkpoints and takes tens of minutes: only with --only qlora.</summary>
    public bool OnlyWhenNamed => true;

    static readonly (string Label, QuantizationOptions Options)[] Variants =
    [
        ("nf4", new QuantizationOptions { Kind = QuantizationKind.Nf4 }),
        ("nf4-no-double-quant", new QuantizationOptions { Kind = QuantizationKind.Nf4, DoubleQuant = false }),
        ("nf4-bf16-compute", new QuantizationOptions { Kind = QuantizationKind.Nf4, ComputeDtype = ScalarType.BFloat16 }),
        ("int8", new QuantizationOptions { Kind = QuantizationKind.Int8, DoubleQuant = false }),
    ];

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        yield return QuantizationError();
        yield return DequantizeSpeed(options.Quick ? 3 : 10);
        foreach (var line in LogProbDrift(options.Quick)) yield return line;
        string[] shapes = options.Quick ? ["small"] : ["qwen2-0.5b", "qwen2-1.5b"];
        foreach (var shape in shapes)
        {
            var lines = new List<JsonObject>();
            // The last: NF4 with gradient checkpointing, how QLoRA is meant to run (the 4 GB goal at Qwen2-1.5B).
            foreach (var (kind, checkpointed) in new[] { ("none", false), ("int8", false), ("nf4", false), ("nf4", true) })
            {
                var line = options.Quick ? InProcess(shape, kind, checkpointed) : InChildProcess(shape, kind, checkpointed);
                line["name"] = $"qlora/ppo/{shape}/{kind}{(checkpointed ? "-checkpointed" : "")}";
                line["shape"] = shape;
                lines.Add(line);
                yield return line;
            }
            yield return Compare(shape, lines);
        }
    }

    /// <summary>Mean squared error on normal(0, 0.02) weights (1024 × 1024) for every code, as a ratio to NF4's.</summary>
    static JsonObject QuantizationError()
    {
        using var scope = NewDisposeScope();
        var w = randn([1024, 1024], generator: new TorchSharp.torch.Generator(1)) * 0.02;
        double Mse(Tensor approx) => (approx - w).square().mean().item<float>();
        double nf4 = Mse(QuantizedWeight.Quantize(w, QuantizationKind.Nf4, doubleQuant: false).Dequantize());
        double nf4dq = Mse(QuantizedWeight.Quantize(w, QuantizationKind.Nf4).Dequantize());
        double int8 = Mse(QuantizedWeight.Quantize(w, QuantizationKind.Int8).Dequantize());
        double uniform = Mse(UniformInt4(w));
        return new JsonObject
        {
            ["name"] = "qlora/quantization-error", ["weights"] = "normal(0, 0.02), 1024 x 1024", ["block_size"] = QuantizedWeight.BlockSize,
            ["nf4_mse"] = nf4, ["nf4_double_quant_mse"] = nf4dq, ["uniform_int4_mse"] = uniform, ["int8_mse"] = int8,
            ["nf4_over_uniform_int4"] = Round(nf4 / uniform, 3), ["double_quant_cost"] = Round(nf4dq / nf4, 4),
        }.WithRatio(nf4 / uniform, "NF4 MSE / uniform int4 MSE");
    }

    /// <summary>The baseline: 16 evenly spaced levels on [−1, 1], same blocks of 64 and absmax as NF4.</summary>
    static Tensor UniformInt4(Tensor w)
    {
        var grid = w.reshape(-1, QuantizedWeight.BlockSize);
        var absmax = grid.abs().amax([1], keepdim: true).clamp_min(1e-12);
        var codes = ((grid / absmax + 1) * 7.5).round().clamp(0, 15);
        return ((codes / 7.5 - 1) * absmax).view(w.shape);
    }

    /// <summary>Rebuilding one MLP projection of the 0.5B shape (4864 × 896) against the fp32 matmul that uses it, decoding (8 rows) and training (512 rows).</summary>
    static JsonObject DequantizeSpeed(int repeats)
    {
        using var scope = NewDisposeScope();
        var w = randn(4864, 896) * 0.02;
        using var nf4 = QuantizedWeight.Quantize(w, QuantizationKind.Nf4);
        using var int8 = QuantizedWeight.Quantize(w, QuantizationKind.Int8);
        var (x8, x512) = (randn(8, 896), randn(512, 896));
        double Ms(Func<Tensor> f) => 1000 * Best(repeats, () => f().Dispose());
        double fp32 = Ms(() => nf4.Dequantize()), bf16 = Ms(() => nf4.Dequantize(ScalarType.BFloat16)), i8 = Ms(() => int8.Dequantize());
        double decode = Ms(() => F.linear(x8, w)), train = Ms(() => F.linear(x512, w));
        return new JsonObject
        {
            ["name"] = "qlora/dequantize", ["weights"] = w.numel(), ["threads"] = get_num_threads(),
            ["nf4_fp32_ms"] = Round(fp32, 3), ["nf4_bf16_ms"] = Round(bf16, 3), ["int8_fp32_ms"] = Round(i8, 3),
            ["nf4_gweights_per_s"] = Round(w.numel() / fp32 / 1e6, 2),
            ["matmul_8_rows_ms"] = Round(decode, 3), ["matmul_512_rows_ms"] = Round(train, 3),
            ["nf4_over_decode_matmul"] = Round(fp32 / decode, 2), ["nf4_over_train_matmul"] = Round(fp32 / train, 3),
        }.WithRatio(fp32 / decode, "NF4 dequantize ms / 8-row matmul ms");
    }

    /// <summary>
    /// A small Qwen2 (4 layers × d256) trained with SFT on the built-in task, then scored on held-out examples in fp32
    /// and quantized: per-token |Δ log p| and the held-out loss, per variant.
    /// </summary>
    static IEnumerable<JsonObject> LogProbDrift(bool quick)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"rlft-bench-drift-{Environment.ProcessId}");
        try
        {
            int steps = quick ? 20 : 300;
            var corpus = ReviewTask.SftCorpus(2048 + 64, seed: 1);
            var train = corpus.Take(2048).Select(e => (e.Prompt, e.Completion)).ToList();
            var heldOut = corpus.Skip(2048).Select(e => (e.Prompt, e.Completion)).ToList();
            ModelPresets.InitModel("qwen2", "small", Path.Combine(dir, "init"), seed: 1, corpus: ReviewTask.TokenizerCorpus(1)).Dispose();
            using (var tokenizer = HfTokenizer.Load(Path.Combine(dir, "init")))
            {
                var policy = new PolicyModel(Checkpoint.Load(Path.Combine(dir, "init")), tokenizer);
                using (var sft = new SftTrainer(policy, new OptimizerOptions { LearningRate = 2e-3, TotalSteps = steps, WarmupSteps = steps / 10 }))
                    for (int s = 0; s < steps; s++) sft.Step(Enumerable.Range(0, 16).Select(i => train[(s * 16 + i) % train.Count]).ToList());
                Checkpoint.Save(policy.Model, Path.Combine(dir, "sft"), Path.Combine(dir, "init"));
                policy.Model.Dispose();
            }
            string sftDir = Path.Combine(dir, "sft");
            using var tok = HfTokenizer.Load(sftDir);
            var prompts = heldOut.Select(e => Encode(tok.Encode(e.Prompt), tok.EosId)).ToList();
            var completions = heldOut.Select(e => (int[])[.. tok.Encode(e.Completion), tok.EosId]).ToList();
            var (reference, mask) = TokenLogProbs(Checkpoint.Load(sftDir), prompts, completions, tok.PadId);
            double refLoss = -(reference * mask).sum().item<float>() / mask.sum().item<float>();
            foreach (var (label, q) in Variants)
            {
                var (lp, _) = TokenLogProbs(ModelQuantizer.Load(sftDir, q), prompts, completions, tok.PadId);
                var diff = ((lp - reference).abs() * mask);
                yield return new JsonObject
                {
                    ["name"] = $"qlora/logprob-drift/{label}", ["model"] = "qwen2 small (4 x 256) after SFT", ["sft_steps"] = steps,
                    ["heldout_sequences"] = heldOut.Count, ["heldout_tokens"] = (long)mask.sum().item<float>(),
                    ["mean_abs_token_logprob_diff"] = Round(diff.sum().item<float>() / mask.sum().item<float>(), 5),
                    ["max_abs_token_logprob_diff"] = Round(diff.max().item<float>(), 4),
                    ["heldout_loss_fp32"] = Round(refLoss, 4),
                    ["heldout_loss_quantized"] = Round(-(lp * mask).sum().item<float>() / mask.sum().item<float>(), 4),
                }.WithRatio(-(lp * mask).sum().item<float>() / mask.sum().item<float>() / refLoss, "quantized held-out loss / fp32 held-out loss");
            }
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    static int[] Encode(int[] ids, int eos) => ids.Length > 0 ? ids : [eos];

    static (Tensor LogProbs, Tensor Mask) TokenLogProbs(CausalLM model, List<int[]> prompts, List<int[]> completions, int pad)
    {
        using (model)
        using (no_grad())
        {
            using var lp = Rlft.Policy.Generation.LogProbs.OfCompletions(model, prompts, completions, pad);
            return (lp.LogProbs.detach().clone().DetachFromDisposeScope(), lp.Mask.detach().clone().DetachFromDisposeScope());
        }
    }

    // ---- LoRA PPO at real shapes ----

    const int Batch = 8, NewTokens = 32, Steps = 3;

    /// <summary>The qwen2 family at every shape: the small quick shape is built as qwen2 too.</summary>
    static string ModelDirectory(string preset) => BenchCases.ModelDirectory(preset, preset == "small" ? "qwen2" : null);

    static JsonObject InProcess(string shape, string kind, bool checkpointed)
    {
        var options = kind switch
        {
            "nf4" => new QuantizationOptions { Kind = QuantizationKind.Nf4 },
            "int8" => new QuantizationOptions { Kind = QuantizationKind.Int8, DoubleQuant = false },
            _ => new QuantizationOptions(),
        };
        var line = QloraPpoCase.Run(new QloraPpoCase.Settings(ModelDirectory(shape), options, Batch, 8, 1, Checkpointing: checkpointed),
            ReviewTask.ReviewPrompts(64, 1).Select(p => p.Prompt).ToList(), (p, c) => ReviewTask.Score(p, c));
        line["peak_rss_mib_note"] = "quick: measured in the bench process, shared by every configuration";
        return line;
    }

    static JsonObject InChildProcess(string shape, string kind, bool checkpointed) => BenchCases.RunChild(
        ["bench-case", "qlora", "--model", ModelDirectory(shape), "--quantize", kind, "--batch", $"{Batch}", "--new-tokens", $"{NewTokens}", "--steps", $"{Steps}",
            .. checkpointed ? new[] { "--checkpointing" } : []]);

    /// <summary>NF4 and int8 against no quantization at one shape: memory and time as ratios.</summary>
    static JsonObject Compare(string shape, List<JsonObject> lines)
    {
        double? Get(string kind, string key) => lines.FirstOrDefault(l => l["quantize"]?.GetValue<string>() == kind && l["gradient_checkpointing"]?.GetValue<bool>() != true)?[key]?.GetValue<double>();
        var o = new JsonObject { ["name"] = $"qlora/ppo/{shape}/compared" };
        foreach (var kind in new[] { "nf4", "int8" })
            foreach (var key in new[] { "peak_rss_mib", "base_mib", "step_s_median", "generate_s_median", "train_s_median" })
                if (Get(kind, key) is double q && Get("none", key) is double f && f > 0) o[$"{kind}_over_fp32_{key}"] = Round(q / f, 3);
        if (o["nf4_over_fp32_peak_rss_mib"] is JsonValue headline) o.WithRatio(headline.GetValue<double>(), "NF4 peak resident MiB / fp32 peak resident MiB");
        return o;
    }
}
