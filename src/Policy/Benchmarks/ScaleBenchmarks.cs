using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Rlft.Policy.Benchmarks.BenchTiming;

namespace Rlft.Policy.Benchmarks;

/// <summary>
/// Memory at real sizes, random weights. <c>scale/lm-head</c>: the log-prob pass over Qwen2-0.5B's head (vocabulary
/// 151,936, hidden 896) for batch 8 × 512 (the backward line: 2 × 512), chunked against full (B, T, V) fp32 logits.
/// <c>scale/checkpointing</c>: one training step of the GPT-2 124M shape cut to 6 layers, batch 1 × 512, with and without
/// per-block gradient checkpointing (with <c>--large</c> also the whole 12 layers at batch 4 × 1,024). <c>scale/bf16-prefill</c>: a frozen bf16 Qwen2-0.5B shape cut to one layer
/// prefilling batch 8 and keeping the last position's logits (what generation does), against the size of its bf16
/// vocabulary matrix: a strided slice into the LM head once made matmul copy that matrix per batch row (ratio ≈ 8).
/// <c>scale/train-step</c>: a whole training step of the GPT-2 124M shape (batch 2 × 512) against the matmul roofline.
/// Memory is the rise of the process's peak resident set over the pass (Linux:
/// the peak is reset through /proc/self/clear_refs before each pass, after the C heap has returned what earlier passes
/// freed); quick mode shrinks the batches. The figures still move by ~100 MiB between runs.
/// </summary>
internal sealed class ScaleBenchmarks : IBenchmark
{
    public string Name => "scale";

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        foreach (var line in LmHead(options.Quick ? 2 : 8, options.Quick ? 128 : 512, backwardBatch: 2)) yield return line;
        yield return Checkpointing(1, options.Quick ? 128 : 512, options.Quick ? 2 : 6);
        // The whole 12-layer shape at batch 4 × 1,024 (several GB of activations and minutes of CPU): with --large only.
        if (options.Large && !options.Quick) yield return Checkpointing(4, 1024, 12);
        yield return Bf16Prefill(8, options.Quick ? 16 : 64);
        yield return TrainStep(options.Quick ? 2 : 12, options.Quick ? 1 : 2, options.Quick ? 128 : 512, options.Quick ? 1 : 2);
    }

    /// <summary>
    /// <c>scale/train-step</c>: one full training step (forward, backward through the chunked LM head, AdamW) of the GPT-2
    /// 124M shape on batch × length tokens, its GFLOP/s by the policy bench's count (6 per matmul weight and token, plus
    /// 12 · layers · T · d for attention; the chunked head's second pass in the backward is not counted) against this
    /// process's fp32 matmul, measured right before and after.
    /// </summary>
    static JsonObject TrainStep(int layers, int batch, int length, int repeats)
    {
        using var model = ModelFactory.CreateInitialized(Shape("gpt2-124m", layers), seed: 0);
        model.train();
        using var ids = randint(model.Config.VocabSize, [batch, length], generator: new Generator(5));   // (B, T)
        var optimizer = optim.AdamW(model.parameters(), lr: 1e-5);
        var c = model.Config;
        long blockWeights = c.NumLayers * 12L * c.HiddenSize * c.HiddenSize, headWeights = (long)c.VocabSize * c.HiddenSize;
        double flopsPerToken = 6.0 * (blockWeights + headWeights) + 12.0 * c.NumLayers * length * c.HiddenSize;
        double roofline = PolicyBenchmarks.MatmulGflops(2048, 2);
        double seconds = Best(repeats, () =>
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = -LogProbs.OfSequences(model, ids, null).mean();
            loss.backward();
            optimizer.step();
            loss.item<float>();
        });
        roofline = Math.Max(roofline, PolicyBenchmarks.MatmulGflops(2048, 2));
        double tokens = batch * (length - 1), gflops = tokens * flopsPerToken / seconds / 1e9;
        return new JsonObject
        {
            ["name"] = "scale/train-step", ["shape"] = "gpt2-124m", ["layers"] = layers, ["batch"] = batch, ["length"] = length,
            ["step_s"] = Round(seconds, 2), ["tokens_per_s"] = Round(tokens / seconds, 0), ["gflops"] = Round(gflops, 1),
            ["matmul_gflops"] = Round(roofline, 1), ["fraction_of_matmul"] = Round(gflops / roofline, 3),
        }.WithRatio(gflops / roofline, "train GFLOP/s / matmul GFLOP/s");
    }

    static JsonObject Bf16Prefill(int batch, int length)
    {
        using var model = ModelFactory.CreateInitialized(Shape("qwen2-0.5b", layers: 1), seed: 0);
        model.to(ScalarType.BFloat16);
        foreach (var p in model.parameters()) p.requires_grad = false;   // frozen, as a replica or a LoRA base is
        model.eval();
        using var ids = randint(model.Config.VocabSize, [batch, length], generator: new Generator(4));   // (B, T)
        void Prefill()
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.Forward(ids, null, null, logitsToKeep: 1).Logits.to(ScalarType.Float32).sum().item<float>();
        }
        Prefill();
        var sw = Stopwatch.StartNew();
        double mib = PeakRiseMiB(Prefill);
        double vocabMib = 2.0 * model.Config.VocabSize * model.Config.HiddenSize / (1 << 20);
        return new JsonObject
        {
            ["name"] = "scale/bf16-prefill", ["shape"] = "qwen2-0.5b", ["layers"] = 1, ["batch"] = batch, ["length"] = length,
            ["peak_mib"] = Round(mib, 0), ["vocab_matrix_mib"] = Round(vocabMib, 0), ["seconds"] = Round(sw.Elapsed.TotalSeconds, 2),
        }.WithRatio(mib / vocabMib, "prefill peak rise MiB / bf16 vocabulary matrix MiB");
    }

    /// <summary>A published shape, optionally cut to <paramref name="layers"/> layers or given another vocabulary size.</summary>
    internal static ModelConfig Shape(string preset, int? layers = null, int? vocab = null)
    {
        var json = PublishedShapes.Config(preset, 1, 2, 0).ToJson();
        if (layers is int n) json[preset.StartsWith("gpt2", StringComparison.Ordinal) ? "n_layer" : "num_hidden_layers"] = n;
        if (vocab is int v) json["vocab_size"] = v;
        return ModelConfig.Parse(json);
    }

    static IEnumerable<JsonObject> LmHead(int batch, int length, int backwardBatch)
    {
        using var model = ModelFactory.CreateInitialized(Shape("qwen2-0.5b", layers: 1), seed: 0);
        foreach (var p in model.parameters()) p.requires_grad = false;   // the backward line differentiates the hidden states only
        yield return LmHeadPass(model, batch, length, backward: false);
        yield return LmHeadPass(model, backwardBatch, length, backward: true);
    }

    /// <summary>One log-prob pass over random final hidden states, chunked then through full (B, T, V) logits.</summary>
    static JsonObject LmHeadPass(CausalLM model, int batch, int length, bool backward)
    {
        using var hidden = randn([batch, length, model.Config.HiddenSize], generator: new Generator(1));      // (B, T, H)
        using var targets = randint(model.Config.VocabSize, [batch, length], generator: new Generator(2));   // (B, T)
        (double Mib, double Seconds) Pass(bool chunked)
        {
            var sw = Stopwatch.StartNew();
            double mib = PeakRiseMiB(() =>
            {
                using var scope = NewDisposeScope();
                using var grad = backward ? enable_grad() : no_grad();
                var h = backward ? hidden.detach().requires_grad_(true) : hidden;
                var lp = chunked
                    ? ChunkedLmHead.TokenStats(model, h, targets).LogProbs
                    : LogProbs.OfTargets(model.LmHeadLogits(h), targets);                                         // (B, T, V) logits
                if (backward) lp.sum().backward();
                lp.sum().item<float>();
            });
            return (mib, sw.Elapsed.TotalSeconds);
        }
        var (chunked, chunkedSeconds) = Pass(chunked: true);
        var (full, fullSeconds) = Pass(chunked: false);
        return new JsonObject
        {
            ["name"] = backward ? "scale/lm-head-backward" : "scale/lm-head", ["vocab"] = model.Config.VocabSize,
            ["batch"] = batch, ["length"] = length, ["full_logits_mib"] = Round(4.0 * batch * length * model.Config.VocabSize / (1 << 20), 0),
            ["chunked_peak_mib"] = Round(chunked, 0), ["unchunked_peak_mib"] = Round(full, 0), ["peak_ratio"] = Round(chunked / full, 3),
            ["chunked_s"] = Round(chunkedSeconds, 2), ["unchunked_s"] = Round(fullSeconds, 2),
        }.WithRatio(chunked / full, "chunked peak MiB / full-logits peak MiB");
    }

    static JsonObject Checkpointing(int batch, int length, int layers)
    {
        using var model = ModelFactory.CreateInitialized(Shape("gpt2-124m", layers), seed: 0);
        model.train();
        using var ids = randint(model.Config.VocabSize, [batch, length], generator: new Generator(3));   // (B, T)
        void Step()
        {
            using var scope = NewDisposeScope();
            (-LogProbs.OfSequences(model, ids, null).mean()).backward();
        }
        Step();   // gradients exist before anything is measured
        (double Mib, double Seconds) Measure(bool on)
        {
            model.GradientCheckpointing = on;
            var sw = Stopwatch.StartNew();
            double mib = PeakRiseMiB(Step);
            return (mib, sw.Elapsed.TotalSeconds);
        }
        var (offMib, offSeconds) = Measure(false);
        var (onMib, onSeconds) = Measure(true);
        model.GradientCheckpointing = false;
        return new JsonObject
        {
            ["name"] = "scale/checkpointing", ["shape"] = "gpt2-124m", ["layers"] = layers, ["batch"] = batch, ["length"] = length,
            ["plain_peak_mib"] = Round(offMib, 0), ["checkpointed_peak_mib"] = Round(onMib, 0),
            ["activation_saving"] = Round(1 - onMib / offMib, 3), ["plain_s"] = Round(offSeconds, 2), ["checkpointed_s"] = Round(onSeconds, 2),
            ["time_cost"] = Round(onSeconds / offSeconds - 1, 3),
        }.WithRatio(onMib / offMib, "checkpointed peak MiB / plain peak MiB");
    }

    /// <summary>How far the peak resident set rises above the current one while <paramref name="pass"/> runs, in MiB.</summary>
    static double PeakRiseMiB(Action pass)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        // Pages an earlier pass freed go back to the system first: kept by the allocator, they would be reused without a
        // rise and make whichever pass runs second look smaller than it is.
        Runtime.NativeHeap.Trim();
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        double before = Status("VmRSS:");
        pass();
        return Status("VmHWM:") - before;
    }

    static double Status(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return double.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        return ResidentMiB();
    }
}
