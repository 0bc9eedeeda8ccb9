using Akka.Actor;
using Rlft.Actors.Protocol;
using Rlft.Policy.Training;
using static TorchSharp.torch;

namespace Rlft.Actors.WeightSync;

/// <summary>
/// A published weight version held as tensors in the learner's process, for the replicas on the same node: they take
/// these tensors' storage (<see cref="Rlft.Policy.Models.ParameterSharing"/>) instead of receiving bytes. A live version
/// reads the learner's own tensors (frozen ones: a LoRA base, or any version while no rollout overlaps training); a
/// snapshot is a copy made at publication (full fine-tuning with <c>max-policy-lag</c> ≥ 1, where the learner makes
/// v+1 while replicas generate with v). The entry owns its tensor handles (aliases or copies); releasing them never
/// frees memory a model still reads. Remote nodes get the same version as bytes, packed from these tensors on demand.
/// </summary>
internal sealed class LocalWeights : IDisposable
{
    public WeightKind Kind { get; }
    public long Version { get; }
    public bool AdapterOnly { get; }
    /// <summary>The full version adapters apply on; the version itself for full weights.</summary>
    public long BaseVersion { get; }
    /// <summary>config.json and tokenizer files (full weights), or adapter_config.json (adapters).</summary>
    public IReadOnlyDictionary<string, string> Files { get; }
    /// <summary>By state-dict name.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }
    /// <summary>False when the tensors are the learner's own (shared storage); true for a copy made at publication.</summary>
    public bool IsSnapshot { get; }

    LocalWeights(WeightKind kind, long version, bool adapterOnly, long baseVersion, IReadOnlyDictionary<string, string> files, Dictionary<string, Tensor> tensors, bool snapshot)
    {
        (Kind, Version, AdapterOnly, BaseVersion, Files, Tensors, IsSnapshot) = (kind, version, adapterOnly, adapterOnly ? baseVersion : version, files, tensors, snapshot);
    }

    /// <summary>The learner's tensors themselves (aliases: same storage): for weights that do not change while replicas read them.</summary>
    public static LocalWeights Live(WeightKind kind, long version, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string> files) =>
        new(kind, version, false, version, files, tensors.ToDictionary(kv => kv.Key, kv => kv.Value.detach().DetachFromDisposeScope()), snapshot: false);

    /// <summary>
    /// A copy of <paramref name="tensors"/> as they are now (floating-point ones in <paramref name="dtype"/>, the
    /// replicas' dtype): adapters, or full weights the learner goes on training while replicas generate.
    /// </summary>
    public static LocalWeights Snapshot(WeightKind kind, long version, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string> files,
        ScalarType dtype = ScalarType.Float32, bool adapterOnly = false, long baseVersion = -1)
    {
        using var _ = no_grad();
        var copies = tensors.ToDictionary(kv => kv.Key, kv =>
            (kv.Value.is_floating_point() ? kv.Value.detach().to(dtype, copy: true) : kv.Value.detach().clone()).DetachFromDisposeScope());
        return new(kind, version, adapterOnly, baseVersion, files, copies, snapshot: true);
    }

    /// <summary>The version as a weight-sync blob (what a remote replica fetches in chunks).</summary>
    public byte[] Pack()
    {
        using var scope = NewDisposeScope();
        return ModelBlob.Pack(Tensors, Files);
    }

    /// <summary>Bytes of tensor storage this entry holds of its own (a snapshot's copies; zero for live aliases).</summary>
    public long OwnBytes => IsSnapshot ? Tensors.Values.Sum(t => t.numel() * t.ElementSize) : 0;

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}

/// <summary>
/// The node's shelf of <see cref="LocalWeights"/>: the newest version of each kind and the newest full version (the
/// base adapter versions apply on). Readers lease an entry while they use its tensors; an entry replaced while leased
/// is released by its last reader. Thread-safe: the learner puts, rollout and weight-server threads read.
/// </summary>
internal sealed class LocalWeightShelf : IExtension
{
    readonly object _gate = new();
    readonly Dictionary<WeightKind, LocalWeights> _newest = new();
    readonly Dictionary<WeightKind, LocalWeights> _newestFull = new();
    readonly Dictionary<LocalWeights, int> _leases = new(ReferenceEqualityComparer.Instance);
    readonly HashSet<LocalWeights> _retired = new(ReferenceEqualityComparer.Instance);

    public static LocalWeightShelf For(ActorSystem system) => system.WithExtension<LocalWeightShelf, LocalWeightShelfProvider>();

    /// <summary>Shelves a version; a same-version entry is replaced (a live base re-shelved once adapters attach).
    /// An older full version (a base re-shelved under newer adapters) becomes the base without displacing the newest.</summary>
    public void Put(LocalWeights weights)
    {
        lock (_gate)
        {
            var before = new HashSet<LocalWeights>(Entries(), ReferenceEqualityComparer.Instance);
            // A base re-shelved under newer adapter versions (QLoRA's, at a stage start) stays the base, not the newest.
            if (!_newest.TryGetValue(weights.Kind, out var newest) || newest.Version <= weights.Version) _newest[weights.Kind] = weights;
            if (!weights.AdapterOnly) _newestFull[weights.Kind] = weights;
            var now = new HashSet<LocalWeights>(Entries(), ReferenceEqualityComparer.Instance);
            foreach (var old in before) if (!now.Contains(old)) Retire(old);
        }
    }

    /// <summary>Whether <paramref name="version"/> of <paramref name="kind"/> is on the shelf.</summary>
    public bool Has(WeightKind kind, long version)
    {
        lock (_gate) return Find(kind, version) is not null;
    }

    /// <summary>The newest version of <paramref name="kind"/> on the shelf (-1: none).</summary>
    public long Newest(WeightKind kind)
    {
        lock (_gate) return _newest.TryGetValue(kind, out var w) ? w.Version : -1;
    }

    /// <summary>Leases <paramref name="version"/> (null when it is no longer shelved); dispose the lease when done reading.</summary>
    public Lease? Acquire(WeightKind kind, long version)
    {
        lock (_gate)
        {
            if (Find(kind, version) is not { } w) return null;
            _leases[w] = _leases.GetValueOrDefault(w) + 1;
            return new Lease(this, w);
        }
    }

    /// <summary>Releases every entry (the node is stopping).</summary>
    public void Clear()
    {
        lock (_gate)
        {
            foreach (var w in Entries().ToList()) Retire(w);
            _newest.Clear();
            _newestFull.Clear();
        }
    }

    IEnumerable<LocalWeights> Entries() => new HashSet<LocalWeights>(_newest.Values.Concat(_newestFull.Values), ReferenceEqualityComparer.Instance);

    LocalWeights? Find(WeightKind kind, long version) =>
        _newest.TryGetValue(kind, out var w) && w.Version == version ? w
        : _newestFull.TryGetValue(kind, out var f) && f.Version == version ? f
        : null;

    void Retire(LocalWeights w)
    {
        if (_leases.GetValueOrDefault(w) > 0) _retired.Add(w);
        else w.Dispose();
    }

    void Release(LocalWeights w)
    {
        lock (_gate)
        {
            int left = _leases[w] - 1;
            if (left > 0) { _leases[w] = left; return; }
            _leases.Remove(w);
            if (_retired.Remove(w)) w.Dispose();
        }
    }

    /// <summary>A reader's hold on a shelved version: its tensors stay valid until the lease is disposed.</summary>
    public sealed class Lease(LocalWeightShelf shelf, LocalWeights weights) : IDisposable
    {
        bool _released;
        public LocalWeights Weights => weights;

        public void Dispose()
        {
            if (_released) return;
            _released = true;
            shelf.Release(weights);
        }
    }
}

/// <summary>Creates the node's <see cref="LocalWeightShelf"/>.</summary>
internal sealed class LocalWeightShelfProvider : ExtensionIdProvider<LocalWeightShelf>
{
    public override LocalWeightShelf CreateExtension(ExtendedActorSystem system)
    {
        var shelf = new LocalWeightShelf();
        system.RegisterOnTermination(shelf.Clear);
        return shelf;
    }
}
