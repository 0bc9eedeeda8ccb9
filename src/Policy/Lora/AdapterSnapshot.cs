using Rlft.Policy.Checkpoints;
using static TorchSharp.torch;

namespace Rlft.Policy.Lora;

/// <summary>
/// The adapters' values at one moment, kept frozen beside the live ones. When the base is quantized every stage
/// trains the same adapters (QLoRA SFT, then PPO on top), so a stage's reference policy is the base plus the adapters
/// as the stage found them, not the bare base; <see cref="Active"/> computes with these values without touching the
/// trained tensors (autograd keeps its saved copies valid). When every B was still zero the snapshot is the base
/// itself and <see cref="Active"/> just switches the adapters off. Files: PEFT's layout, as the live adapters.
/// </summary>
internal sealed class AdapterSnapshot : IDisposable
{
    readonly LoraAdapters _adapters;
    readonly Dictionary<string, Tensor> _tensors;

    /// <summary>True when the snapshot adds nothing to the base (every lora_B was zero).</summary>
    public bool IsZero { get; }

    /// <summary>The frozen tensors by their model state-dict names (…q_proj.lora_A.weight).</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors => _tensors;

    AdapterSnapshot(LoraAdapters adapters, Dictionary<string, Tensor> tensors)
    {
        (_adapters, _tensors) = (adapters, tensors);
        IsZero = tensors.Where(kv => kv.Key.EndsWith(".lora_B.weight", StringComparison.Ordinal)).All(kv => kv.Value.count_nonzero().item<long>() == 0);
    }

    /// <summary>Copies the adapters' current values.</summary>
    public static AdapterSnapshot Take(LoraAdapters adapters)
    {
        using var _ = no_grad();
        return new AdapterSnapshot(adapters, adapters.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope()));
    }

    /// <summary>Within the returned scope the model computes with the snapshot's values (or as the bare base when <see cref="IsZero"/>).</summary>
    public IDisposable Active()
    {
        if (IsZero) return _adapters.Disabled();
        if (_adapters.Merged) throw new InvalidOperationException("adapters are merged into the base weights; unmerge before using a snapshot");
        foreach (var (name, layer) in _adapters.Layers) layer.LoraOverride = (_tensors[$"{name}.lora_A.weight"], _tensors[$"{name}.lora_B.weight"]);
        return new Scope(() => { foreach (var (_, layer) in _adapters.Layers) layer.LoraOverride = null; });
    }

    /// <summary>Writes the snapshot as a PEFT adapter directory (adapter_config.json, adapter_model.safetensors).</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, LoraAdapters.ConfigFile), _adapters.ConfigJson());
        SafetensorsFile.Save(Path.Combine(dir, LoraAdapters.WeightsFile), _tensors.ToDictionary(kv => LoraAdapters.PeftPrefix + kv.Key, kv => kv.Value));
    }

    /// <summary>Reads a snapshot written by <see cref="Save"/> for <paramref name="adapters"/>: every adapter tensor, with its shape, and nothing else.</summary>
    public static AdapterSnapshot Load(LoraAdapters adapters, string dir)
    {
        string weights = Path.Combine(dir, LoraAdapters.WeightsFile);
        var loaded = SafetensorsFile.Load(weights).ToDictionary(
            kv => kv.Key.StartsWith(LoraAdapters.PeftPrefix, StringComparison.Ordinal) ? kv.Key[LoraAdapters.PeftPrefix.Length..] : kv.Key, kv => kv.Value);
        var expected = adapters.StateDict();
        var wrong = expected.Where(kv => !loaded.TryGetValue(kv.Key, out var t) || !t.shape.SequenceEqual(kv.Value.shape)).Select(kv => kv.Key)
            .Concat(loaded.Keys.Where(k => !expected.ContainsKey(k))).ToList();
        if (wrong.Count > 0)
        {
            foreach (var t in loaded.Values) t.Dispose();
            throw new InvalidDataException($"{weights}: does not match the adapters (missing, unexpected or mis-shaped: {string.Join(", ", wrong.Take(5))})");
        }
        var device = expected.Values.First().device;
        return new AdapterSnapshot(adapters, loaded.ToDictionary(kv => kv.Key, kv => kv.Value.to(expected[kv.Key].dtype, device).DetachFromDisposeScope()));
    }

    public void Dispose()
    {
        foreach (var t in _tensors.Values) t.Dispose();
    }

    sealed class Scope(Action undo) : IDisposable
    {
        bool done;
        public void Dispose() { if (!done) { done = true; undo(); } }
    }
}
