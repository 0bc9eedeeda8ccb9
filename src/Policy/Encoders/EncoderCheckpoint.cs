using System.Text.Json;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Encoders;

/// <summary>
/// Encoder checkpoints in Hugging Face layout: <c>config.json</c>, <c>model.safetensors</c> (or shards, or a
/// <c>pytorch_model.bin</c> read through <see cref="TorchBinFile"/>), tokenizer files. Keys are accepted with or without the base-model prefix (<c>bert.</c>, <c>roberta.</c>, <c>distilbert.</c>);
/// the position/token-type id buffers older checkpoints carry, and a pooler the head does not read, are ignored as
/// transformers ignores them. Anything else missing, unexpected or mis-shaped is refused, every such name listed.
/// </summary>
internal static class EncoderCheckpoint
{
    /// <summary>Pre-training and other heads a fine-tuning start may carry and transformers drops (MLM, NSP, another task's head).</summary>
    static readonly string[] ForeignHeads = ["cls.", "lm_head.", "vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "classifier.", "pre_classifier.", "qa_outputs."];

    /// <summary>
    /// BERT's pooler, which a sequence classifier's checkpoint carries: part of the head the model makes for its task, so
    /// a start that brings a new head (or only its body) ignores it, as it ignores a foreign head.
    /// </summary>
    public static bool IsPooler(string key) => key.StartsWith("pooler.", StringComparison.Ordinal) || key.Contains(".pooler.", StringComparison.Ordinal);

    /// <summary>Checkpoint names the model does not hold as parameters.</summary>
    public static bool IsIgnorable(string key, EncoderConfig config) =>
        key.EndsWith("embeddings.position_ids", StringComparison.Ordinal)
        || key.EndsWith("embeddings.token_type_ids", StringComparison.Ordinal)
        || !config.HasPooler && key.Contains("pooler.", StringComparison.Ordinal);

    /// <summary>
    /// The name transformers loads a checkpoint key as: TF-era BERT checkpoints (bert-base-uncased among them) name
    /// LayerNorm parameters <c>gamma</c> and <c>beta</c>, which from_pretrained renames to <c>weight</c> and <c>bias</c>.
    /// </summary>
    public static string CanonicalKey(string key) =>
        key.EndsWith(".gamma", StringComparison.Ordinal) ? key[..^".gamma".Length] + ".weight"
        : key.EndsWith(".beta", StringComparison.Ordinal) ? key[..^".beta".Length] + ".bias"
        : key;

    /// <summary>A checkpoint's tensors (or shapes) under their canonical names.</summary>
    public static Dictionary<string, T> Canonical<T>(IReadOnlyDictionary<string, T> found) =>
        found.ToDictionary(kv => CanonicalKey(kv.Key), kv => kv.Value);

    /// <summary>The model on the meta device: names and shapes, no memory.</summary>
    public static EncoderModel CreateMeta(EncoderConfig config)
    {
        using var _ = ParameterDevice.Use(META);
        return new EncoderModel(config);
    }

    public static EncoderModel CreateInitialized(EncoderConfig config, long seed)
    {
        var model = new EncoderModel(config);
        model.InitWeights(seed);
        model.eval();
        return model;
    }

    /// <summary>Loads <paramref name="dir"/> exactly as it is (its head included) onto <paramref name="device"/>, in eval mode.</summary>
    public static EncoderModel Load(string dir, Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory not found: {dir}");
        var config = EncoderConfig.Load(Path.Combine(dir, Checkpoint.ConfigFile));
        var model = new EncoderModel(config);
        var tensors = Checkpoint.ReadTensors(dir);
        try { Copy(model, tensors, dir, key => IsIgnorable(key, config), _ => true); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        model.eval();
        if (device is not null && device.type != DeviceType.CPU) model.MoveTo(device);
        return model;
    }

    /// <summary>
    /// Loads <paramref name="dir"/> as the start of a task: its head is kept when it is already that task's with as many
    /// labels; otherwise the body is loaded (every body tensor required) and a new head initialised from
    /// <paramref name="seed"/>, as transformers' from_pretrained does for a fine-tuning start (pre-training heads dropped).
    /// </summary>
    public static EncoderModel LoadForTask(string dir, EncoderTask task, IReadOnlyList<string> labels, ProblemType? problem, long seed, out bool newHead, Device? device = null)
    {
        var saved = EncoderConfig.Load(Path.Combine(dir, Checkpoint.ConfigFile));
        newHead = saved.Task != task || saved.NumLabels != labels.Count;
        if (!newHead)
        {
            var exact = Load(dir, device);
            if (saved.Labels.SequenceEqual(labels) && saved.Problem == problem) return exact;
            var relabelled = new EncoderModel(saved.WithHead(task, labels, problem ?? saved.Problem));
            using (no_grad()) foreach (var (name, p) in relabelled.state_dict()) p.copy_(exact.state_dict()[name]);
            exact.Dispose();
            relabelled.eval();
            if (device is not null && device.type != DeviceType.CPU) relabelled.MoveTo(device);
            return relabelled;
        }
        var config = saved.WithHead(task, labels, problem);
        var model = new EncoderModel(config);
        model.InitWeights(seed);
        var tensors = Checkpoint.ReadTensors(dir);
        try
        {
            Copy(model, tensors, dir, key => IsIgnorable(key, config) || IsPooler(key) || ForeignHeads.Any(h => key.StartsWith(h, StringComparison.Ordinal)),
                 name => !model.IsHeadParameter(name));
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        model.eval();
        if (device is not null && device.type != DeviceType.CPU) model.MoveTo(device);
        return model;
    }

    /// <summary>Copies checkpoint tensors into the parameters <paramref name="expect"/> selects, by name (prefix optional).</summary>
    static void Copy(EncoderModel model, IReadOnlyDictionary<string, Tensor> tensors, string source, Func<string, bool> ignore, Func<string, bool> expect)
    {
        var expected = model.state_dict().Where(kv => !kv.Key.Contains(".lora_") && expect(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors = Canonical(tensors);
        var matched = Checkpoint.Match(expected.ToDictionary(kv => kv.Key, kv => kv.Value.shape), tensors.ToDictionary(kv => kv.Key, kv => kv.Value.shape),
            source, ignore, [model.Config.Prefix + "."]);
        using var _ = no_grad();
        foreach (var (key, name) in matched) expected[name].copy_(tensors[key]);
    }

    /// <summary>
    /// Writes config.json and model.safetensors (fp32, adapter tensors excluded) and copies the tokenizer files of
    /// <paramref name="tokenizerDir"/> when given.
    /// </summary>
    public static void Save(EncoderModel model, string dir, string? tokenizerDir = null)
    {
        Directory.CreateDirectory(dir);
        using (var scope = NewDisposeScope())
        {
            var tensors = model.state_dict().Where(kv => !kv.Key.Contains(".lora_"))
                .ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(ScalarType.Float32).cpu().contiguous());
            SafetensorsFile.Save(Path.Combine(dir, Checkpoint.WeightsFile), tensors);
        }
        var cfg = model.Config.ToJson();
        cfg["torch_dtype"] = "float32";
        File.WriteAllText(Path.Combine(dir, Checkpoint.ConfigFile), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (File.Exists(Path.Combine(dir, Checkpoint.IndexFile))) File.Delete(Path.Combine(dir, Checkpoint.IndexFile));
        if (tokenizerDir is not null && Path.GetFullPath(tokenizerDir) != Path.GetFullPath(dir))
            foreach (var f in Checkpoint.TokenizerFiles.Append("vocab.txt"))
                if (File.Exists(Path.Combine(tokenizerDir, f))) File.Copy(Path.Combine(tokenizerDir, f), Path.Combine(dir, f), overwrite: true);
    }
}
