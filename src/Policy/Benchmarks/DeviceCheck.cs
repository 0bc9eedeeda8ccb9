using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using Rlft.Policy.Runtime;
using Rlft.Policy.Training;
using TorchSharp;
using static TorchSharp.torch;
using static Rlft.Policy.Benchmarks.BenchTiming;

namespace Rlft.Policy.Benchmarks;

/// <summary>
/// The checks of RLFT's accelerator path on the device at hand (<c>rlft device-check</c>, run by scripts/gpu-check.sh on a
/// GPU machine; on the CPU it checks the same code paths against themselves). Each check is one JSON line with
/// <c>ok</c> and its figures, or <c>ok = false</c> and the exception that stopped it; one failing check does not stop
/// the next. The checks:
/// <list type="bullet">
/// <item><c>runtime</c>: versions, backend, whether CUDA is available and how many devices.</item>
/// <item><c>logits/device-vs-cpu</c>: a seeded tiny GPT-2's fp32 logits on the device against the same model on the CPU.</item>
/// <item><c>grad/bf16-vs-fp32</c>: the learner's mixed precision (a bf16 compute copy, fp32 master): loss and gradients
/// against the fp32 model on the same device (cosine similarity of all gradients, relative loss difference).</item>
/// <item><c>generate/kv-cache</c>: greedy decoding with the KV cache against recomputing the whole sequence each step.</item>
/// <item><c>train/SHAPE</c>: the train step of the learner's bf16 path at a published shape (random weights): tokens/s,
/// achieved TFLOP/s (6 per matmul weight per token + 12·L·T·d for attention), the device's own bf16 matmul TFLOP/s
/// measured in the same process, the fraction of it, and model FLOPs utilisation against <c>peakTflops</c>.</item>
/// </list>
/// </summary>
internal static class DeviceCheck
{
    public sealed record Options(string Device, IReadOnlyList<string> Shapes, double PeakTflops, int Batch = 8, int Length = 512, int Steps = 5);

    public static IEnumerable<JsonObject> Run(Options o)
    {
        yield return Guard("runtime", () =>
        {
            var r = TorchRuntime.Describe();
            return new JsonObject
            {
                ["ok"] = o.Device == "cpu" || r.CudaAvailable,
                ["rlft"] = r.RlftVersion, ["dotnet"] = r.DotNetVersion, ["torchsharp"] = r.TorchSharpVersion, ["libtorch"] = r.LibTorchVersion,
                ["backend"] = r.Backend, ["threads"] = r.Threads, ["cuda_available"] = r.CudaAvailable, ["cuda_devices"] = r.CudaDeviceCount,
                ["os"] = r.Os,
            };
        });
        Device? device = null;
        Exception? refused = null;
        try { device = TorchRuntime.ResolveDevice(o.Device); }
        catch (Exception e) { refused = e; }
        if (device is null)
        {
            yield return Failed("device", refused!);
            yield break;
        }
        yield return Guard("logits/device-vs-cpu", () => LogitsAgainstCpu(device));
        yield return Guard("grad/bf16-vs-fp32", () => MixedPrecisionGradients(device));
        yield return Guard("generate/kv-cache", () => CachedDecoding(device));
        foreach (var shape in o.Shapes) yield return Guard($"train/{shape}", () => TrainStep(device, shape, o));
    }

    static JsonObject Guard(string name, Func<JsonObject> check)
    {
        var sw = Stopwatch.StartNew();
        JsonObject line;
        try
        {
            using var scope = NewDisposeScope();
            line = check();
        }
        catch (Exception e) { return Failed(name, e, sw.Elapsed.TotalSeconds); }
        var result = new JsonObject { ["name"] = name };
        foreach (var (k, v) in line) result[k] = v?.DeepClone();
        result["seconds"] = Round(sw.Elapsed.TotalSeconds, 2);
        return result;
    }

    static JsonObject Failed(string name, Exception e, double seconds = 0) => new()
    {
        ["name"] = name, ["ok"] = false, ["error"] = $"{e.GetType().Name}: {e.Message}", ["seconds"] = Round(seconds, 2),
    };

    static CausalLM Tiny(long seed)
    {
        var config = ModelPresets.Shape("gpt2", "tiny");
        return ModelFactory.CreateInitialized(config, seed);
    }

    static Tensor RandomTokens(int batch, int length, int vocab, long seed)
    {
        var g = new Generator((ulong)seed);
        return randint(1, vocab, [batch, length], dtype: ScalarType.Int64, generator: g);
    }

    static JsonObject LogitsAgainstCpu(Device device)
    {
        using var model = Tiny(1);
        model.eval();
        using var ids = RandomTokens(4, 32, model.Config.VocabSize, 2);
        using var _ = no_grad();
        using var cpu = model.Forward(ids).Logits.detach().clone();
        model.MoveTo(device);
        using var onDevice = model.Forward(ids.to(device)).Logits.to(CPU);
        double maxDiff = (onDevice - cpu).abs().max().item<float>();
        double scale = cpu.abs().max().item<float>();
        return new JsonObject { ["ok"] = maxDiff <= 1e-3 * Math.Max(1, scale), ["max_abs_diff"] = maxDiff, ["max_abs_logit"] = Round(scale, 3) };
    }

    static JsonObject MixedPrecisionGradients(Device device)
    {
        using var master = Tiny(3);
        master.MoveTo(device);
        master.train();
        using var ids = RandomTokens(4, 64, master.Config.VocabSize, 4).to(device);
        var fp32Loss = -LogProbs.OfSequences(master, ids, null).mean();
        fp32Loss.backward();
        var fp32Grads = master.parameters().Where(p => p.grad is not null).Select(p => p.grad!.detach().clone().flatten()).ToList();
        foreach (var p in master.parameters()) p.grad = null;
        using var mixed = new MixedPrecisionModel(master, ScalarType.BFloat16);
        mixed.Compute.train();
        var bf16Loss = -LogProbs.OfSequences(mixed.Compute, ids, null).mean();
        bf16Loss.backward();
        mixed.SyncGradients();
        var bf16Grads = master.parameters().Where(p => p.grad is not null).Select(p => p.grad!.detach().flatten()).ToList();
        var a = cat(fp32Grads);
        var b = cat(bf16Grads);
        double cosine = (a * b).sum().item<float>() / Math.Max(1e-30, a.norm().item<float>() * b.norm().item<float>());
        double l32 = fp32Loss.item<float>(), l16 = bf16Loss.to(ScalarType.Float32).item<float>();
        double lossRel = Math.Abs(l16 - l32) / Math.Abs(l32);
        return new JsonObject
        {
            ["ok"] = fp32Grads.Count == bf16Grads.Count && cosine >= 0.99 && lossRel <= 0.02,
            ["gradient_cosine"] = Round(cosine, 5), ["loss_fp32"] = Round(l32, 5), ["loss_bf16"] = Round(l16, 5), ["loss_relative_diff"] = Round(lossRel, 5),
            ["gradients"] = fp32Grads.Count,
        };
    }

    static JsonObject CachedDecoding(Device device)
    {
        using var model = Tiny(5);
        model.MoveTo(device);
        var prompts = Enumerable.Range(0, 6).Select(i => Enumerable.Range(0, 3 + 2 * i).Select(j => 1 + (i * 31 + j * 7) % (model.Config.VocabSize - 1)).ToArray()).ToList();
        var greedy = new GenerationOptions { MaxNewTokens = 24, Temperature = 0, StopTokenIds = [-1] };
        var cached = TextGenerator.Generate(model, prompts, greedy, 0, 0);
        var recomputed = TextGenerator.Generate(model, prompts, greedy with { UseKvCache = false }, 0, 0);
        int equal = cached.Tokens.Zip(recomputed.Tokens).Count(p => p.First.SequenceEqual(p.Second));
        return new JsonObject { ["ok"] = equal == prompts.Count, ["sequences"] = prompts.Count, ["identical"] = equal, ["new_tokens"] = greedy.MaxNewTokens };
    }

    static JsonObject TrainStep(Device device, string shape, Options o)
    {
        var config = ModelPresets.Shape(ModelPresets.ArchitectureOf(shape) ?? "gpt2", shape);
        using var master = ModelFactory.CreateInitialized(config, seed: 7);
        master.MoveTo(device);
        master.train();
        bool bf16 = device.type == DeviceType.CUDA;
        using var mixed = bf16 ? new MixedPrecisionModel(master, ScalarType.BFloat16) : null;
        var compute = mixed?.Compute ?? master;
        compute.train();
        var optimizer = optim.AdamW(master.parameters(), lr: 1e-5);
        int length = Math.Min(o.Length, config.MaxPositions);
        using var ids = RandomTokens(o.Batch, length, config.VocabSize, 8).to(device);
        var times = new List<double>();
        for (int step = 0; step <= o.Steps; step++)
        {
            var sw = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                var loss = -LogProbs.OfSequences(compute, ids, null).mean();
                loss.backward();
                mixed?.SyncGradients();
                optimizer.step();
                mixed?.SyncWeights();
                loss.to(ScalarType.Float32).item<float>();
                Synchronize(device);
            }
            if (step > 0) times.Add(sw.Elapsed.TotalSeconds);   // the first step warms up
        }
        double seconds = times.Order().ElementAt(times.Count / 2);
        // Matmul weights: every 2-D parameter but the embedding tables (looked up, not multiplied), plus the LM head once.
        string[] tables = ["wte", "wpe", "embed_tokens"];
        long matmulWeights = master.named_parameters()
            .Where(p => p.parameter.dim() == 2 && !tables.Any(t => p.name.Contains(t, StringComparison.Ordinal)) && !p.name.Contains("lm_head", StringComparison.Ordinal))
            .Sum(p => p.parameter.numel()) + (long)config.VocabSize * config.HiddenSize;
        double tokens = o.Batch * (length - 1);
        double flops = tokens * (6.0 * matmulWeights + 12.0 * config.NumLayers * length * config.HiddenSize);
        double tflops = flops / seconds / 1e12;
        double roofline = MatmulTflops(device, bf16 ? ScalarType.BFloat16 : ScalarType.Float32);
        var line = new JsonObject
        {
            ["ok"] = true, ["shape"] = shape, ["dtype"] = bf16 ? "bf16 compute, fp32 master" : "fp32",
            ["parameters"] = master.parameters().Sum(p => p.numel()), ["batch"] = o.Batch, ["length"] = length,
            ["step_s_median"] = Round(seconds, 4), ["tokens_per_s"] = Round(tokens / seconds, 0),
            ["tflops"] = Round(tflops, 3), ["matmul_tflops"] = Round(roofline, 3), ["fraction_of_matmul"] = Round(tflops / roofline, 3),
        };
        if (bf16) line["mfu"] = Round(tflops / o.PeakTflops, 4);
        line["peak_tflops"] = o.PeakTflops;
        return line.WithRatio(tflops / roofline, "train TFLOP/s / matmul TFLOP/s (same dtype, same process)");
    }

    static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize();
    }

    /// <summary>The device's matmul TFLOP/s at <paramref name="dtype"/>: the best of a few square products (4096³ on CUDA, 1024³ on the CPU).</summary>
    static double MatmulTflops(Device device, ScalarType dtype)
    {
        int n = device.type == DeviceType.CUDA ? 4096 : 1024;
        using var scope = NewDisposeScope();
        var a = randn([n, n], device: device).to(dtype);
        var b = randn([n, n], device: device).to(dtype);
        double best = Best(3, () =>
        {
            using var inner = NewDisposeScope();
            for (int i = 0; i < 4; i++) matmul(a, b);
            Synchronize(device);
        });
        return 4 * 2.0 * n * n * n / best / 1e12;
    }
}
