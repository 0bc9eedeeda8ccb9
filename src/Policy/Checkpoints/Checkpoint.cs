using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Checkpoints;

/// <summary>
/// Hugging Face checkpoint directories: <c>config.json</c> + <c>model.safetensors</c> (or a sharded
/// <c>model.safetensors.index.json</c>, or, read only, a PyTorch <c>pytorch_model.bin</c> or its sharded index) +
/// tokenizer files. Loading accepts keys with or without the
/// <c>transformer.</c> / <c>model.</c> prefix, any of fp32/fp16/bf16 (converted to the model's dtype), and
/// ignores GPT-2's attention-mask buffers; anything missing, unexpected or of the wrong shape is an error
/// listing every such tensor.
/// </summary>
public static class Checkpoint
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";
    /// <summary>torch.save state dicts, read (never written) when a checkpoint has no safetensors.</summary>
    public const string BinWeightsFile = "pytorch_model.bin", BinIndexFile = "pytorch_model.bin.index.json";
    public static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt", "chat_template.jinja"];

    /// <summary>
    /// Loads config and weights from <paramref name="dir"/> onto <paramref name="device"/> (CPU when null), in eval mode,
    /// held in <paramref name="dtype"/>: the model is converted before the weights are read, so a bf16 load never holds
    /// the fp32 model (each tensor is cast as it is copied in).
    /// </summary>
    public static CausalLM Load(string dir, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory not found: {dir}");
        var config = ModelConfig.Load(Path.Combine(dir, ConfigFile));
        var model = ModelFactory.Create(config);
        if (dtype != ScalarType.Float32) model.to(dtype);
        LoadWeights(model, dir);
        model.eval();
        if (device is not null && device.type != DeviceType.CPU) model.MoveTo(device);
        return model;
    }

    /// <summary>Reads every tensor of a checkpoint directory (single file or shards).</summary>
    internal static Dictionary<string, Tensor> ReadTensors(string dir)
    {
        var all = new Dictionary<string, Tensor>();
        foreach (var file in WeightFiles(dir))
            foreach (var kv in IsSafetensors(file) ? SafetensorsFile.Load(file) : TorchBinFile.Load(file)) all[kv.Key] = kv.Value;
        return all;
    }

    /// <summary>The checkpoint names a model of this config does not hold as parameters (buffers, tied heads).</summary>
    internal static bool IsIgnorable(string key, ModelConfig config) =>
        key.EndsWith(".attn.bias", StringComparison.Ordinal) && config.Family == ModelFamily.Gpt2
        || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal)
        || key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal)
        || key == "lm_head.weight" && config.TieWordEmbeddings;

    /// <summary>
    /// Reads a checkpoint into <paramref name="model"/> one tensor at a time: names and shapes are matched from the
    /// safetensors headers (or the pickles of pytorch_model.bin) first (every problem reported before any data is read), then each tensor is read, copied
    /// (cast to the parameter's dtype) and released, so the load never holds more than the model and one tensor.
    /// </summary>
    internal static void LoadWeights(CausalLM model, string dir)
    {
        var expected = model.state_dict().Where(kv => !kv.Key.Contains(".lora_")).ToDictionary(kv => kv.Key, kv => kv.Value);
        var matched = Match(expected.ToDictionary(kv => kv.Key, kv => kv.Value.shape), ReadShapes(dir), dir, key => IsIgnorable(key, model.Config));
        using var _ = no_grad();
        foreach (var file in WeightFiles(dir))
            foreach (var (key, tensor) in ReadEach(file, matched.ContainsKey))
                using (tensor) expected[matched[key]].copy_(tensor);
    }

    static bool IsSafetensors(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal);

    /// <summary>
    /// One weights file's tensors one at a time, in their stored dtype (<see cref="SafetensorsFile.ReadEach"/> or
    /// <see cref="TorchBinFile.ReadEach"/> by the file's kind); <paramref name="wanted"/> skips tensors unread.
    /// </summary>
    internal static IEnumerable<(string Name, Tensor Tensor)> ReadEach(string file, Func<string, bool>? wanted = null) =>
        IsSafetensors(file) ? SafetensorsFile.ReadEach(file, wanted) : TorchBinFile.ReadEach(file, wanted);

    /// <summary>
    /// Copies <paramref name="tensors"/> into <paramref name="module"/>'s parameters by name. Adapter tensors
    /// (<c>.lora_</c>) on the module are not expected. Throws listing missing, unexpected and mis-shaped names.
    /// </summary>
    internal static void CopyInto(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source, Func<string, bool>? ignore = null)
    {
        var expected = module.state_dict().Where(kv => !kv.Key.Contains(".lora_")).ToDictionary(kv => kv.Key, kv => kv.Value);
        var matched = Match(expected.ToDictionary(kv => kv.Key, kv => kv.Value.shape), tensors.ToDictionary(kv => kv.Key, kv => kv.Value.shape), source, ignore);
        using var _ = no_grad();
        foreach (var (key, name) in matched) expected[name].copy_(tensors[key]);
    }

    /// <summary>
    /// Pairs a checkpoint's tensor names with a module's parameter names (the checkpoint may omit or add the
    /// <c>transformer.</c> / <c>model.</c> prefix) and checks shapes. Returns checkpoint key → parameter name;
    /// throws one message listing every missing, unexpected and mis-shaped tensor. <paramref name="prefixes"/> are the
    /// base-model prefixes a checkpoint may omit (default <c>transformer.</c> and <c>model.</c>; encoders pass theirs).
    /// </summary>
    internal static Dictionary<string, string> Match(IReadOnlyDictionary<string, long[]> expected, IReadOnlyDictionary<string, long[]> found, string source, Func<string, bool>? ignore = null,
        IReadOnlyList<string>? prefixes = null)
    {
        prefixes ??= ["transformer.", "model."];
        var matched = new Dictionary<string, string>();
        var unexpected = new List<string>();
        foreach (var key in found.Keys)
        {
            if (ignore?.Invoke(key) == true) continue;
            string? name = expected.ContainsKey(key) ? key : prefixes.Select(p => p + key).FirstOrDefault(expected.ContainsKey);
            if (name is null) unexpected.Add(key); else matched[key] = name;
        }
        var names = matched.Values.ToHashSet();
        var missing = expected.Keys.Where(k => !names.Contains(k)).ToList();
        var badShape = matched.Where(kv => !found[kv.Key].SequenceEqual(expected[kv.Value]))
            .Select(kv => $"{kv.Value} (checkpoint [{string.Join(", ", found[kv.Key])}], model [{string.Join(", ", expected[kv.Value])}])").ToList();
        var problems = new List<string>();
        if (missing.Count > 0) problems.Add($"missing tensors: {string.Join(", ", missing)}");
        if (unexpected.Count > 0) problems.Add($"unexpected tensors: {string.Join(", ", unexpected)}");
        if (badShape.Count > 0) problems.Add($"wrong shapes: {string.Join(", ", badShape)}");
        if (problems.Count > 0) throw new InvalidDataException($"{source}: {string.Join("; ", problems)}");
        return matched;
    }

    /// <summary>
    /// Every tensor's name and shape in a checkpoint directory, read from the safetensors headers or the
    /// pytorch_model.bin pickles only (single file or shards): no tensor data is loaded. Throws naming the file for a
    /// missing, unreadable or truncated one.
    /// </summary>
    internal static Dictionary<string, long[]> ReadShapes(string dir)
    {
        var shapes = new Dictionary<string, long[]>();
        foreach (var file in WeightFiles(dir))
            if (IsSafetensors(file)) foreach (var (name, info) in SafetensorsFile.Describe(file)) shapes[name] = info.Shape;
            else foreach (var (name, info) in TorchBinFile.Describe(file)) shapes[name] = info.Shape;
        return shapes;
    }

    /// <summary>
    /// The weight files of a checkpoint, in transformers' from_pretrained precedence: model.safetensors, the shards
    /// of model.safetensors.index.json, pytorch_model.bin, the shards of pytorch_model.bin.index.json.
    /// </summary>
    internal static IReadOnlyList<string> WeightFiles(string dir)
    {
        foreach (var (single, index) in new[] { (WeightsFile, IndexFile), (BinWeightsFile, BinIndexFile) })
        {
            if (File.Exists(Path.Combine(dir, single))) return [Path.Combine(dir, single)];
            if (File.Exists(Path.Combine(dir, index))) return Shards(dir, Path.Combine(dir, index));
        }
        throw new FileNotFoundException($"{dir}: no {WeightsFile}, {IndexFile}, {BinWeightsFile} or {BinIndexFile}", Path.Combine(dir, WeightsFile));
    }

    static List<string> Shards(string dir, string index)
    {
        JsonObject map;
        try { map = JsonNode.Parse(File.ReadAllText(index))?["weight_map"] as JsonObject ?? throw new InvalidDataException($"{index}: 'weight_map' missing"); }
        catch (JsonException e) { throw new InvalidDataException($"{index}: invalid JSON ({e.Message})", e); }
        var shards = new List<string>();
        foreach (var (tensor, value) in map)
        {
            if (value is not JsonValue v || !v.TryGetValue<string>(out var shard) || shard.Length == 0 || shard.Contains('/') || shard.Contains(".."))
                throw new InvalidDataException($"{index}: weight_map[\"{tensor}\"] is not a shard file name");
            if (!shards.Contains(shard)) shards.Add(shard);
        }
        foreach (var shard in shards)
            if (!File.Exists(Path.Combine(dir, shard))) throw new FileNotFoundException($"{index}: shard {shard} is missing", Path.Combine(dir, shard));
        return shards.Select(s => Path.Combine(dir, s)).ToList();
    }

    /// <summary>
    /// Writes a freshly initialised model of <paramref name="config"/> without ever holding it: the parameter names and
    /// shapes come from the model built on the meta device, and each tensor is created, initialised
    /// (<see cref="CausalLM.Initialize"/>, in <c>named_parameters()</c> order from one seeded generator, so the weights
    /// equal <see cref="ModelFactory.CreateInitialized"/>'s) and written before the next exists. Memory grows with
    /// the largest tensor (the embedding matrix), not the model: writing Qwen2-0.5B's 2 GB peaked at 1.3 GB resident,
    /// of which about 0.2 GB is the runtime. Writes config.json (fp32) and copies tokenizer files.
    /// </summary>
    internal static void SaveInitialized(ModelConfig config, string dir, long seed, string? tokenizerDir = null)
    {
        Directory.CreateDirectory(dir);
        List<(string Name, long[] Shape)> entries;
        using (var meta = ModelFactory.CreateMeta(config))
            entries = meta.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        using var gen = new Generator((ulong)seed);
        SafetensorsFile.WriteStreamed(Path.Combine(dir, WeightsFile), entries, i =>
        {
            var t = empty(entries[i].Shape, dtype: ScalarType.Float32, device: CPU);
            CausalLM.Initialize(config, entries[i].Name, t, gen);
            return t;
        });
        WriteConfigAndTokenizer(config, dir, tokenizerDir, ScalarType.Float32);
    }

    /// <summary>
    /// Writes config.json and model.safetensors (fp32 unless <paramref name="dtype"/> says otherwise, adapter
    /// tensors excluded) and copies tokenizer files from <paramref name="tokenizerDir"/> when given.
    /// </summary>
    public static void Save(CausalLM model, string dir, string? tokenizerDir = null, ScalarType dtype = ScalarType.Float32)
    {
        if (Quantization.ModelQuantizer.IsQuantized(model))
            throw new InvalidOperationException("this model's projections are quantized: save the checkpoint it was quantized from (and its adapters), not the 4/8-bit tensors");
        Directory.CreateDirectory(dir);
        var state = model.state_dict().Where(kv => !kv.Key.Contains(".lora_")).ToList();
        if (dtype == ScalarType.Float32)
        {
            // Tensor by tensor: the file is never built in memory beside the model (at 0.5B parameters that was 2 GB more).
            SafetensorsFile.WriteStreamed(Path.Combine(dir, WeightsFile), state.Select(kv => (kv.Key, kv.Value.shape)).ToList(),
                i => state[i].Value.detach().to(ScalarType.Float32).cpu().contiguous());
        }
        else
            using (var scope = NewDisposeScope())
                SafetensorsFile.Save(Path.Combine(dir, WeightsFile), state.ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(dtype).cpu().contiguous()));
        WriteConfigAndTokenizer(model.Config, dir, tokenizerDir, dtype);
    }

    static void WriteConfigAndTokenizer(ModelConfig config, string dir, string? tokenizerDir, ScalarType dtype)
    {
        string dtypeName = dtype switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" };
        var cfg = config.ToJson();
        cfg["torch_dtype"] = dtypeName;
        File.WriteAllText(Path.Combine(dir, ConfigFile), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (File.Exists(Path.Combine(dir, IndexFile))) File.Delete(Path.Combine(dir, IndexFile));
        if (tokenizerDir is not null && Path.GetFullPath(tokenizerDir) != Path.GetFullPath(dir))
            foreach (var f in TokenizerFiles)
                if (File.Exists(Path.Combine(tokenizerDir, f))) File.Copy(Path.Combine(tokenizerDir, f), Path.Combine(dir, f), overwrite: true);
    }
}
