using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using static TorchSharp.torch;

namespace Rlft.Actors.Compute;

/// <summary>The small text files that describe a model (config, tokenizer), carried inside weight blobs.</summary>
internal static class ModelFiles
{
    static readonly string[] Names = [Checkpoint.ConfigFile, .. Checkpoint.TokenizerFiles, QuantizationOptions.FileName];

    /// <summary>Config and tokenizer files of a model directory (quantization settings come from the job, not the directory).</summary>
    public static Dictionary<string, string> Read(string directory) =>
        Names.Where(n => n != QuantizationOptions.FileName && File.Exists(Path.Combine(directory, n)))
             .ToDictionary(n => n, n => File.ReadAllText(Path.Combine(directory, n)));

    /// <summary>Writes the files into a fresh directory and returns it.</summary>
    public static string Materialize(IReadOnlyDictionary<string, string> files, string purpose)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"rlft-{purpose}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        foreach (var (name, text) in files)
        {
            if (!Names.Contains(name)) throw new InvalidDataException($"unexpected file '{name}' in a weight blob");
            File.WriteAllText(Path.Combine(dir, name), text);
        }
        return dir;
    }

    /// <summary>
    /// Builds an (untrained) model and tokenizer from blob files, on <paramref name="device"/>, with the files' chat
    /// template. With quantization_config.json among them, the projections get empty quantized storage (never fp32
    /// weights) to receive a quantized base.
    /// </summary>
    public static PolicyModel Build(IReadOnlyDictionary<string, string> files, TorchSharp.torch.Device device, string purpose)
    {
        string dir = Materialize(files, purpose);
        try
        {
            var model = ModelFactory.Create(ModelConfig.Load(Path.Combine(dir, Checkpoint.ConfigFile)));
            if (QuantizationOptions.Load(dir) is { } quantization) ModelQuantizer.Prepare(model, quantization);
            model.MoveTo(device);
            model.eval();
            var tokenizer = HfTokenizer.Load(dir);
            return new PolicyModel(model, tokenizer, Encoder(dir, tokenizer));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// Builds a model from blob files whose parameters share the storage of <paramref name="tensors"/> (a shelved
    /// version in this process): built on the meta device, so no memory of its own, then each parameter takes its
    /// tensor's storage, cast copies only where <paramref name="dtype"/> differs. Quantized projections take the
    /// shelved 4/8-bit tensors. Frozen, in eval mode. Returns how many tensors were shared.
    /// </summary>
    public static (CausalLM Model, int Shared) BuildShared(IReadOnlyDictionary<string, string> files, IReadOnlyDictionary<string, Tensor> tensors,
        TorchSharp.torch.ScalarType dtype)
    {
        var configText = files.GetValueOrDefault(Checkpoint.ConfigFile) ?? throw new InvalidDataException("shared weights carry no config.json");
        var config = ModelConfig.Parse(System.Text.Json.Nodes.JsonNode.Parse(configText) as System.Text.Json.Nodes.JsonObject
            ?? throw new InvalidDataException("shared weights: config.json is not a JSON object"));
        var quantization = files.TryGetValue(QuantizationOptions.FileName, out var q) ? QuantizationOptions.Parse(q, "shared weights") : null;
        var model = ModelFactory.CreateMeta(config);
        try
        {
            var device = tensors.Values.First().device;
            int shared = ParameterSharing.Adopt(model, tensors, PolicyModel.FrozenDtype(dtype), quantization?.ResolveComputeDtype(device) ?? TorchSharp.torch.ScalarType.Float32);
            PolicyModel.Freeze(model, dtype);
            return (model, shared);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <see cref="BuildShared"/> with the files' tokenizer and chat template: a replica or a reward model over shelved
    /// tensors (<paramref name="tensors"/> by unprefixed state-dict name).
    /// </summary>
    public static (PolicyModel Policy, int Shared) BuildSharedPolicy(IReadOnlyDictionary<string, string> files, IReadOnlyDictionary<string, Tensor> tensors,
        TorchSharp.torch.ScalarType dtype, string purpose)
    {
        var (model, shared) = BuildShared(files, tensors, dtype);
        string dir = Materialize(files.Where(f => f.Key != QuantizationOptions.FileName).ToDictionary(), purpose);
        try
        {
            var tokenizer = HfTokenizer.Load(dir);
            return (new PolicyModel(model, tokenizer, Encoder(dir, tokenizer)), shared);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// How a model directory's examples are encoded: its tokenizer, its chat template (chat_template.jinja or
    /// tokenizer_config.json's; or <paramref name="templateOverride"/>, a file or builtin:NAME) and every id that ends a
    /// turn or a sequence (generation_config.json's and config.json's eos_token_id, the template's end of turn).
    /// </summary>
    public static ExampleEncoder Encoder(string dir, ITokenizer tokenizer, string? templateOverride = null)
    {
        var template = templateOverride is null ? ChatTemplate.TryLoad(dir) : ChatTemplate.Load(dir, templateOverride);
        return new ExampleEncoder(tokenizer, template, EndTokens.ForModel(dir, tokenizer));
    }
}
