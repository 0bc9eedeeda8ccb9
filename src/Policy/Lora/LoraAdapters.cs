using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Encoders;
using Rlft.Policy.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Lora;

/// <summary>
/// LoRA adapters attached to a model's projections: y = W x + (α/r)·B A dropout(x). The base weights are frozen,
/// A is Kaiming-uniform and B zero, so the adapted model starts equal to the base. <see cref="Disabled"/> gives the
/// frozen reference policy from the same weights; <see cref="Merge"/> folds B A into W for fast inference.
/// Files use PEFT's layout: adapter_config.json and adapter_model.safetensors with keys
/// <c>base_model.model.{module}.lora_A.weight</c>.
/// </summary>
internal sealed class LoraAdapters
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    internal const string PeftPrefix = "base_model.model.";

    /// <summary>The adapted model: a causal LM or an encoder.</summary>
    public nn.Module Model { get; }
    public LoraConfig Config { get; }
    public IReadOnlyList<(string Name, Dense Layer)> Layers { get; }
    public bool Merged { get; private set; }
    /// <summary>PEFT's task_type: CAUSAL_LM for a policy, SEQ_CLS / QUESTION_ANS / TOKEN_CLS for an encoder's head.</summary>
    public string TaskType { get; }
    /// <summary>The head modules trained in full beside the adapters (PEFT's modules_to_save); empty for a causal LM.</summary>
    public IReadOnlyList<string> ModulesToSave { get; }

    LoraAdapters(nn.Module model, LoraConfig config, IReadOnlyList<(string, Dense)> layers, string taskType, IReadOnlyList<string> modulesToSave)
    {
        Model = model; Config = config; Layers = layers; TaskType = taskType; ModulesToSave = modulesToSave;
    }

    /// <summary>Attaches adapters to every projection whose name ends with a target and freezes everything else.</summary>
    public static LoraAdapters Apply(CausalLM model, LoraConfig config, long seed = 0) =>
        Attach(model, model.DenseLayers(), model.Config.ModelType, config, seed, "CAUSAL_LM", []);

    /// <summary>
    /// Attaches adapters to an encoder's projections whose names end with a target (BERT and RoBERTa: <c>query</c>,
    /// <c>key</c>, <c>value</c>, <c>dense</c>; DistilBERT: <c>q_lin</c>, <c>k_lin</c>, <c>v_lin</c>, <c>out_lin</c>, <c>lin1</c>,
    /// <c>lin2</c>) and freezes the body; the task head (<see cref="EncoderModel.IsHeadParameter"/>: classifier, qa_outputs,
    /// BERT's pooler) stays trainable in full, as PEFT's SEQ_CLS and QUESTION_ANS tasks keep it in modules_to_save.
    /// Targets match projections of the body only (the head's own dense layers train in full).
    /// </summary>
    public static LoraAdapters Apply(EncoderModel model, LoraConfig config, long seed = 0)
    {
        var body = model.DenseLayers().Where(d => !model.IsHeadParameter(d.Name + ".weight"));
        var head = model.named_parameters().Where(p => model.IsHeadParameter(p.name)).Select(p => p.parameter).ToList();
        string task = model.Config.Task switch
        {
            EncoderTask.QuestionAnswering => "QUESTION_ANS",
            EncoderTask.TokenClassification => "TOKEN_CLS",
            _ => "SEQ_CLS",
        };
        var saved = model.named_parameters().Select(p => p.name).Where(model.IsHeadParameter)
            .Select(n => n.Split('.') is var parts && parts[0] == model.Config.Prefix ? string.Join('.', parts[..^1]) : parts[0]).Distinct().ToList();
        var adapters = Attach(model, body, model.Config.ModelType, config, seed, task, saved);
        foreach (var p in head) p.requires_grad = true;
        return adapters;
    }

    static LoraAdapters Attach(nn.Module model, IEnumerable<(string Name, Dense Layer)> dense, string modelType, LoraConfig config, long seed, string taskType, IReadOnlyList<string> modulesToSave)
    {
        config.Validate();
        var layers = dense
            .Where(d => config.TargetModules.Any(t => d.Name == t || d.Name.EndsWith("." + t, StringComparison.Ordinal)))
            .ToList();
        if (layers.Count == 0)
            throw new ArgumentException($"lora target_modules [{string.Join(", ", config.TargetModules)}] match no projection of this {modelType} model");
        if (layers.Any(l => l.Layer.HasAdapter)) throw new InvalidOperationException("the model already carries LoRA adapters");
        foreach (var p in model.parameters()) p.requires_grad = false;
        using var gen = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var (_, layer) in layers)
        {
            var device = layer.Device;
            var a = nn.Linear(layer.InFeatures, config.Rank, hasBias: false, device: device);  // (r, in)
            var b = nn.Linear(config.Rank, layer.OutFeatures, hasBias: false, device: device); // (out, r)
            // PEFT: kaiming_uniform_(a=√5) for A, i.e. U(−1/√in, 1/√in); zeros for B.
            double bound = 1.0 / Math.Sqrt(layer.InFeatures);
            var init = rand(new long[] { config.Rank, layer.InFeatures }, generator: gen) * (2 * bound) - bound;
            a.weight!.copy_(init);
            init.Dispose();
            b.weight!.zero_();
            layer.lora_A = a; layer.lora_B = b;
            layer.register_module("lora_A", a);
            layer.register_module("lora_B", b);
            layer.LoraScale = config.Scale; layer.LoraDropout = config.Dropout;
            a.weight.requires_grad = true; b.weight.requires_grad = true;
            a.train(model.training); b.train(model.training);
        }
        return new LoraAdapters(model, config, layers, taskType, modulesToSave);
    }

    /// <summary>The trainable tensors (every lora_A and lora_B weight), for the optimizer.</summary>
    public IEnumerable<Parameter> Parameters() => Layers.SelectMany(l => new[] { l.Layer.lora_A!.weight!, l.Layer.lora_B!.weight! });

    /// <summary>Adapter tensors by their model state-dict names (…q_proj.lora_A.weight).</summary>
    public Dictionary<string, Tensor> StateDict() => Layers
        .SelectMany(l => new[] { ($"{l.Name}.lora_A.weight", (Tensor)l.Layer.lora_A!.weight!), ($"{l.Name}.lora_B.weight", (Tensor)l.Layer.lora_B!.weight!) })
        .ToDictionary(x => x.Item1, x => x.Item2);

    /// <summary>Within the returned scope the model computes as the base (the frozen reference), with no copy of the weights.</summary>
    public IDisposable Disabled()
    {
        if (Merged) throw new InvalidOperationException("adapters are merged into the base weights; unmerge before disabling them");
        foreach (var (_, l) in Layers) l.LoraDisabled = true;
        return new Restore(() => { foreach (var (_, l) in Layers) l.LoraDisabled = false; });
    }

    /// <summary>W += (α/r)·B A in place; forward then skips the adapter branch. A quantized base cannot take it.</summary>
    public void Merge()
    {
        if (Merged) return;
        if (Layers.Any(l => l.Layer.Quantized is not null))
            throw new InvalidOperationException("LoRA adapters cannot be merged into a quantized base (the sum would have to be quantized again); keep them separate");
        using var _ = no_grad();
        foreach (var (_, l) in Layers) { using var d = l.AdapterDelta(); l.weight.add_(d); l.LoraMerged = true; }
        Merged = true;
    }

    /// <summary>Undoes <see cref="Merge"/> (W −= (α/r)·B A); equal to the original up to float rounding.</summary>
    public void Unmerge()
    {
        if (!Merged) return;
        using var _ = no_grad();
        foreach (var (_, l) in Layers) { using var d = l.AdapterDelta(); l.weight.sub_(d); l.LoraMerged = false; }
        Merged = false;
    }

    /// <summary>The adapter_config.json text (PEFT's format) describing these adapters.</summary>
    public string ConfigJson(string? baseModel = null) =>
        Config.ToPeftJson(Layers.Any(l => l.Layer.Transposed), baseModel, TaskType, ModulesToSave.Count > 0 ? ModulesToSave : null).ToJsonString(LoraConfig.Indented) + "\n";

    /// <summary>
    /// Copies adapter tensors (model state-dict names, as <see cref="StateDict"/>) into these adapters; every
    /// adapter tensor must be present with its shape, and nothing else.
    /// </summary>
    public void CopyFrom(IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var expected = StateDict();
        var missing = expected.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
        var unexpected = tensors.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        var wrong = expected.Where(kv => tensors.TryGetValue(kv.Key, out var t) && !t.shape.SequenceEqual(kv.Value.shape)).Select(kv => kv.Key).ToList();
        if (missing.Count + unexpected.Count + wrong.Count > 0)
            throw new InvalidDataException($"{source}: missing [{string.Join(", ", missing)}] unexpected [{string.Join(", ", unexpected)}] wrong shape [{string.Join(", ", wrong)}]");
        using var _ = no_grad();
        foreach (var (k, t) in expected) t.copy_(tensors[k]);
    }

    /// <summary>Writes adapter_config.json and adapter_model.safetensors (PEFT key names).</summary>
    public void Save(string dir, string? baseModel = null)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, ConfigFile), ConfigJson(baseModel));
        SafetensorsFile.Save(Path.Combine(dir, WeightsFile), StateDict().ToDictionary(kv => PeftPrefix + kv.Key, kv => kv.Value));
    }

    /// <summary>Attaches adapters from a PEFT directory to <paramref name="model"/> (which must not carry any yet).</summary>
    public static LoraAdapters Load(CausalLM model, string dir)
    {
        string cfgPath = Path.Combine(dir, ConfigFile);
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"adapter config not found: {cfgPath}", cfgPath);
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(cfgPath)) as JsonObject ?? throw new InvalidDataException($"{cfgPath}: expected a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{cfgPath}: invalid JSON ({e.Message})", e); }
        var adapters = Apply(model, LoraConfig.FromPeftJson(json, cfgPath));
        string weights = Path.Combine(dir, WeightsFile);
        var tensors = SafetensorsFile.Load(weights);
        try
        {
            adapters.CopyFrom(tensors.ToDictionary(kv => kv.Key.StartsWith(PeftPrefix, StringComparison.Ordinal) ? kv.Key[PeftPrefix.Length..] : kv.Key, kv => kv.Value), weights);
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        return adapters;
    }

    sealed class Restore(Action undo) : IDisposable
    {
        bool done;
        public void Dispose() { if (!done) { done = true; undo(); } }
    }
}
