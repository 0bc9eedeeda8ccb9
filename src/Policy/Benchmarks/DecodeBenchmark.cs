using System.Text.Json.Nodes;
using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Rlft.Policy.Benchmarks.BenchTiming;

namespace Rlft.Policy.Benchmarks;

/// <summary>
/// Decoding at real shapes, where the step is memory-bound: every weight is read once a step for the whole batch.
/// <c>decode/gpt2-124m</c> (GPT-2's (in, out) Conv1D layout, tied head) and <c>decode/qwen2-0.5b</c> (nn.Linear's
/// (out, in) layout, the 151,936-row tied head; cut to 4 layers, so the head is most of the bytes), random weights,
/// batch 8, KV cache, sampled. Each is timed with RLFT's decoding kernels (the small-batch projection
/// <see cref="DecodeLinear"/>, the single-query attention <see cref="DecodeAttention"/>, libtorch's own ops inline,
/// <see cref="Runtime.DecodeThreads"/>) and with libtorch's path for all three, alternately in this process; the line
/// gives the weight bytes a step reads, their GB/s against
/// the same process's large-copy bandwidth, and the speed-up. <c>decode/qwen2-0.5b-nf4</c> is the same with the
/// projections' base quantized to NF4 (QLoRA's rollout).
/// </summary>
internal sealed class DecodeBenchmark : IBenchmark
{
    public string Name => "decode";
    const int Batch = 8;

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        int prompt = options.Quick ? 8 : 32, newTokens = options.Quick ? 8 : 32, repeats = options.Quick ? 1 : 2;
        double bandwidth = PolicyBenchmarks.CopyGBps(repeats + 2);
        // Quick mode (a smoke run): one or two layers and, for Qwen2, an 8,192-token vocabulary.
        bool quick = options.Quick;
        yield return Decode("gpt2-124m", quick ? 2 : null, null, prompt, newTokens, repeats, bandwidth);
        yield return Decode("qwen2-0.5b", quick ? 1 : 4, quick ? 8192 : null, prompt, newTokens, repeats, bandwidth);
        yield return Decode("qwen2-0.5b", quick ? 1 : 4, quick ? 8192 : null, prompt, newTokens, repeats, bandwidth, nf4: true);
    }

    static JsonObject Decode(string preset, int? layers, int? vocab, int prompt, int newTokens, int repeats, double bandwidth, bool nf4 = false)
    {
        var config = ScaleBenchmarks.Shape(preset, layers, vocab);
        using var model = ModelFactory.CreateInitialized(config, seed: 0);
        // QLoRA's rollout: the projections' base in NF4, rebuilt layer by layer each step (where there is no AVX-512 kernel
        // that multiplies from the codes); the embeddings and the tied head stay fp32.
        if (nf4) Quantization.ModelQuantizer.Quantize(model, new Quantization.QuantizationOptions { Kind = Quantization.QuantizationKind.Nf4 });
        model.eval();
        var random = new Random(1);
        var prompts = Enumerable.Range(0, Batch).Select(_ => Enumerable.Range(0, prompt).Select(_ => random.Next(1, config.VocabSize)).ToArray()).ToList();
        var sampling = new GenerationOptions { MaxNewTokens = newTokens, Temperature = 1.0, Seed = 5, StopTokenIds = [-1] };
        // Prefill is timed alone and taken off, so the figures are the decoding steps'.
        double Steps()
        {
            double all = Best(0, () => TextGenerator.Generate(model, prompts, sampling, 0, 0));
            double prefill = Best(0, () => TextGenerator.Generate(model, prompts, sampling with { MaxNewTokens = 1 }, 0, 0));
            return DecodeStepSeconds(all, prefill, newTokens);
        }
        double fast = double.MaxValue, plain = double.MaxValue;
        try
        {
            TextGenerator.Generate(model, prompts, sampling with { MaxNewTokens = 2 }, 0, 0);   // warm-up
            for (int r = 0; r < repeats; r++)
            {
                Libtorch(false); fast = Math.Min(fast, Steps());
                Libtorch(true); plain = Math.Min(plain, Steps());
            }
        }
        finally { Libtorch(false); }
        // fp32 bytes of the matrices; the NF4 line counts its projections as the fp32 weights they are rebuilt into.
        double weightBytes = 4.0 * model.parameters().Where(p => p.dim() == 2 && p.device_type != DeviceType.META).Sum(p => p.numel())
            + 4.0 * model.DenseLayers().Where(d => d.Layer.Quantized is not null).Sum(d => d.Layer.InFeatures * d.Layer.OutFeatures);
        double gbps = weightBytes / fast / 1e9, plainGbps = weightBytes / plain / 1e9;
        return new JsonObject
        {
            ["name"] = nf4 ? $"decode/{preset}-nf4" : $"decode/{preset}", ["layers"] = config.NumLayers, ["batch"] = Batch, ["prompt_tokens"] = prompt, ["new_tokens"] = newTokens,
            ["weights_mb_per_step"] = Round(weightBytes / 1e6, 0), ["copy_gb_per_s"] = Round(bandwidth, 2),
            ["ms_per_step"] = Round(fast * 1000, 1), ["tokens_per_s"] = Round(Batch / fast, 1),
            ["gb_per_s"] = Round(gbps, 2), ["fraction_of_bandwidth"] = Round(gbps / bandwidth, 3),
            ["libtorch_ms_per_step"] = Round(plain * 1000, 1), ["libtorch_gb_per_s"] = Round(plainGbps, 2),
            ["libtorch_fraction_of_bandwidth"] = Round(plainGbps / bandwidth, 3), ["speedup"] = Round(plain / fast, 2),
        }.WithRatio(plain / fast, "libtorch's step seconds / RLFT's decoding kernels' step seconds");
    }

    static void Libtorch(bool on) => DecodeLinear.Disabled = DecodeAttention.Disabled = Runtime.DecodeThreads.Disabled = on;
}
