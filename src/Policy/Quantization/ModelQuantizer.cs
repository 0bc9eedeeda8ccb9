using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using Rlft.Policy.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Quantization;

/// <summary>
/// Puts a causal LM's projections into 4 or 8 bits. <see cref="Load"/> quantizes while reading a checkpoint, one
/// tensor at a time, so a model whose fp32 weights would not fit is never held in fp32: the peak is the quantized
/// model, its full-precision parts (embeddings, norms, skipped projections) and one fp32 tensor.
/// </summary>
internal static class ModelQuantizer
{
    /// <summary>The projections <paramref name="options"/> quantizes, by module name.</summary>
    public static List<(string Name, Dense Layer)> Targets(CausalLM model, QuantizationOptions options) =>
        model.DenseLayers().Where(d => options.Quantizes(d.Name)).ToList();

    /// <summary>Whether any projection of <paramref name="model"/> is stored quantized.</summary>
    public static bool IsQuantized(CausalLM model) => model.DenseLayers().Any(d => d.Layer.Quantized is not null);

    /// <summary>Quantizes the projections of a loaded model in place, from their fp32 weights.</summary>
    public static void Quantize(CausalLM model, QuantizationOptions options)
    {
        var targets = CheckedTargets(model, options);
        var dtype = options.ResolveComputeDtype(model.WordEmbeddings.device);
        foreach (var (_, layer) in targets)
        {
            using var scope = NewDisposeScope();
            var w = layer.Transposed ? layer.weight.t() : layer.weight;                    // (out, in)
            layer.Quantize(QuantizedWeight.Quantize(w, options.Kind, options.DoubleQuant), dtype);
        }
    }

    /// <summary>
    /// Gives the projections <paramref name="options"/> names uninitialised quantized storage (and drops their fp32
    /// weights), so the model can receive a quantized state (a weight blob) by name.
    /// </summary>
    public static void Prepare(CausalLM model, QuantizationOptions options)
    {
        var device = model.WordEmbeddings.device;
        var dtype = options.ResolveComputeDtype(device);
        foreach (var (_, layer) in CheckedTargets(model, options))
            layer.Quantize(QuantizedWeight.Empty(options.Kind, layer.OutFeatures, layer.InFeatures, options.DoubleQuant, device), dtype);
    }

    /// <summary>
    /// Loads config and weights from <paramref name="dir"/> (fp32, fp16 or bf16, single file or shards), quantizing
    /// each projection as its tensor is read. Every tensor name and shape is checked against the config before any
    /// data is read. The model is in eval mode, on <paramref name="device"/> (CPU when null).
    /// </summary>
    public static CausalLM Load(string dir, QuantizationOptions options, Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory not found: {dir}");
        var config = ModelConfig.Load(Path.Combine(dir, Checkpoint.ConfigFile));
        // Projection weights are allocated with empty() and never written: their pages are not committed before
        // they are released for the quantized copy.
        var model = ModelFactory.Create(config);
        try
        {
            var state = model.state_dict();
            var matched = Checkpoint.Match(state.ToDictionary(kv => kv.Key, kv => kv.Value.shape), Checkpoint.ReadShapes(dir), dir,
                key => Checkpoint.IsIgnorable(key, config));
            var targets = CheckedTargets(model, options).ToDictionary(t => t.Name + ".weight", t => t.Layer);
            var dtype = options.ResolveComputeDtype(device ?? CPU);
            foreach (var file in Checkpoint.WeightFiles(dir))
                foreach (var (key, tensor) in Checkpoint.ReadEach(file, matched.ContainsKey))
                {
                    string name = matched[key];
                    bool quantized = targets.TryGetValue(name, out var layer);
                    using (var scope = NewDisposeScope())
                    using (no_grad())
                    {
                        if (quantized) layer!.Quantize(QuantizedWeight.Quantize(layer.Transposed ? tensor.t() : tensor, options.Kind, options.DoubleQuant), dtype);
                        else state[name].copy_(tensor);
                        tensor.Dispose();
                    }
                    // Quantization's temporaries lie in the C heap between the codes it keeps, and glibc does not give
                    // those pages back by itself: over a 1.5B model they added up to 4.7 GB before the load ended.
                    if (quantized) NativeHeap.Trim();
                }
            model.eval();
            if (device is not null && device.type != DeviceType.CPU) model.MoveTo(device);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Quantized weights and their bytes, next to the base's full-precision parameters (LoRA adapters not counted): what the base costs.</summary>
    public static (long QuantizedWeights, long QuantizedBytes, long FullPrecisionParameters) Footprint(CausalLM model)
    {
        var quantized = model.DenseLayers().Select(d => d.Layer.Quantized).Where(q => q is not null).ToList();
        long fullPrecision = model.named_parameters().Where(p => !p.name.Contains(".lora_")).Sum(p => p.parameter.numel());
        return (quantized.Sum(q => q!.Count), quantized.Sum(q => q!.Bytes), fullPrecision);
    }

    static List<(string Name, Dense Layer)> CheckedTargets(CausalLM model, QuantizationOptions options)
    {
        if (!options.Enabled) throw new ArgumentException("quantize = none: nothing to quantize");
        var targets = Targets(model, options);
        if (targets.Count == 0)
            throw new ArgumentException($"quantize-skip-modules [{string.Join(", ", options.SkipModules)}] leave no projection of this {model.Config.ModelType} model to quantize");
        return targets;
    }
}
