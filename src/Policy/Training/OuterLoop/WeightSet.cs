using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>
/// Named tensors detached from any model: the global weights of an outer loop (full weights or LoRA adapters), a
/// participant's update, or an optimizer's moments. Kept in fp32 on the tensors' device, in the order they were given,
/// so that every sum over them runs in one fixed order.
/// </summary>
internal sealed class WeightSet : IDisposable
{
    readonly List<(string Name, Tensor Value)> _items;

    WeightSet(List<(string, Tensor)> items) => _items = items;

    public int Count => _items.Count;
    public IEnumerable<string> Names => _items.Select(x => x.Name);
    public Tensor this[string name] => _items.First(x => x.Name == name).Value;
    public IReadOnlyList<(string Name, Tensor Value)> Items => _items;

    /// <summary>A copy of <paramref name="parameters"/>' current values.</summary>
    public static WeightSet Snapshot(IEnumerable<(string Name, Parameter Value)> parameters)
    {
        using var _ = no_grad();
        return new(parameters.Select(p => (p.Name, p.Value.detach().to(ScalarType.Float32).clone().DetachFromDisposeScope())).ToList());
    }

    /// <summary>Zeros shaped like <paramref name="like"/>.</summary>
    public static WeightSet ZerosLike(WeightSet like) =>
        new(like._items.Select(x => (x.Name, zeros_like(x.Value).DetachFromDisposeScope())).ToList());

    /// <summary>Writes these values into <paramref name="parameters"/> (same names; each cast to the parameter's dtype).</summary>
    public void CopyTo(IEnumerable<(string Name, Parameter Value)> parameters)
    {
        using var _ = no_grad();
        foreach (var (name, p) in parameters) p.copy_(this[name].to(p.dtype));
    }

    /// <summary><c>after − this</c> for each tensor: a participant's update from these global weights.</summary>
    public WeightSet DeltaTo(WeightSet after)
    {
        using var _ = no_grad();
        return new(_items.Select(x => (x.Name, (after[x.Name] - x.Value).DetachFromDisposeScope())).ToList());
    }

    /// <summary>this += <paramref name="scale"/> · <paramref name="other"/>, in place.</summary>
    public void AddScaled(WeightSet other, double scale)
    {
        using var _ = no_grad();
        foreach (var (name, value) in _items) value.add_(other[name], alpha: scale);
    }

    /// <summary>this *= <paramref name="factor"/>, in place.</summary>
    public void Scale(double factor)
    {
        using var _ = no_grad();
        foreach (var (_, value) in _items) value.mul_(factor);
    }

    public WeightSet Clone() => new(_items.Select(x => (x.Name, x.Value.clone().DetachFromDisposeScope())).ToList());

    /// <summary>The L2 norm over all tensors.</summary>
    public double Norm()
    {
        using var scope = NewDisposeScope();
        double sum = 0;
        foreach (var (_, v) in _items) sum += v.square().sum().item<float>();
        return Math.Sqrt(sum);
    }

    /// <summary>Every element, tensor after tensor in this set's order, as fp32 (what crosses the cluster).</summary>
    public float[] ToFloats()
    {
        using var scope = NewDisposeScope();
        return _items.SelectMany(x => x.Value.detach().cpu().to(ScalarType.Float32).flatten().data<float>().ToArray()).ToArray();
    }

    /// <summary>Tensors shaped like <paramref name="like"/>'s (same names, order and device) holding <paramref name="values"/> (from <see cref="ToFloats"/>).</summary>
    public static WeightSet FromFloats(WeightSet like, ReadOnlySpan<float> values)
    {
        long total = like._items.Sum(x => x.Value.NumberOfElements);
        if (values.Length != total) throw new ArgumentException($"expected {total} values for {like.Count} tensors, got {values.Length}", nameof(values));
        var items = new List<(string, Tensor)>();
        int offset = 0;
        foreach (var (name, v) in like._items)
        {
            int n = (int)v.NumberOfElements;
            items.Add((name, tensor(values.Slice(offset, n).ToArray(), v.shape).to(v.device).DetachFromDisposeScope()));
            offset += n;
        }
        return new(items);
    }

    /// <summary>Bytes the tensors take (what a participant's update costs to send).</summary>
    public long Bytes => _items.Sum(x => x.Value.NumberOfElements * x.Value.ElementSize);

    public void Dispose() { foreach (var (_, v) in _items) v.Dispose(); }
}
