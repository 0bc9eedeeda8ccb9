using System.Reflection;
using Rlft.Policy.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Gives a model's parameters the storage of tensors that already exist in this process, so that frozen weights
/// (a LoRA base, a published weight version) are held once however many models read them. The target is normally
/// built on the meta device (<see cref="ModelFactory.CreateMeta"/>): it then never holds memory of its own.
/// A parameter becomes a new, frozen tensor that shares the source's storage (<c>detach()</c>: the same memory, its
/// own autograd state). Where the source's dtype differs from the one wanted, the parameter is a cast copy instead.
/// Quantized projections (<see cref="Dense.Quantized"/>) share their 4/8-bit storage the same way.
/// </summary>
internal static class ParameterSharing
{
    /// <summary>
    /// Points every parameter of <paramref name="target"/> at the tensor of the same state-dict name in
    /// <paramref name="source"/>; a projection whose source tensors are quantized (<c>weight_nf4</c>, …) is quantized
    /// onto them first. Every parameter must be found with its shape. Returns how many tensors were shared (the rest,
    /// in another dtype than <paramref name="dtype"/>, were copied as it).
    /// </summary>
    public static int Adopt(nn.Module target, IReadOnlyDictionary<string, Tensor> source, ScalarType dtype, ScalarType quantizedComputeDtype = ScalarType.Float32)
    {
        int shared = 0;
        if (target is CausalLM lm)
            foreach (var (name, layer) in lm.DenseLayers())
                if (layer.Quantized is null && QuantizedParts(source, name) is { } kind)
                {
                    var q = QuantizedWeight.FromTensors(kind.Kind, layer.OutFeatures, layer.InFeatures, kind.DoubleQuant, part => Share(source[$"{name}.{part}"]));
                    layer.Quantize(q, quantizedComputeDtype);
                    shared += q.Tensors().Count();
                }
        using var _ = no_grad();
        foreach (var (prefix, module) in Modules(target))
            foreach (var (local, old) in module.named_parameters(recurse: false).ToList())
            {
                string name = prefix.Length == 0 ? local : $"{prefix}.{local}";
                if (old.device_type == DeviceType.META && module is Dense { Quantized: not null } && local == nameof(Dense.weight)) continue;
                if (!source.TryGetValue(name, out var s))
                    throw new InvalidDataException($"tensor {name} is missing from the weights to share");
                if (!s.shape.SequenceEqual(old.shape))
                    throw new InvalidDataException($"tensor {name}: shape [{string.Join(", ", s.shape)}] does not match the model's [{string.Join(", ", old.shape)}]");
                bool same = s.dtype == dtype;
                var p = new Parameter(same ? Share(s) : s.detach().to(dtype), requires_grad: false);
                Replace(module, local, p);
                if (!ReferenceEquals(old, p)) old.Dispose();
                if (same) shared++;
            }
        return shared;
    }

    /// <summary>True when the two tensors read the same memory (same storage and offset): shared, not equal by value.</summary>
    public static bool SameStorage(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.device_type == b.device_type && a.device_index == b.device_index && a.storage_offset() == b.storage_offset() && DataPointer(a) == DataPointer(b);

    // libtorch's storage address of any dtype (TorchSharp's typed Storage<T> converts other dtypes to a copy first).
    static readonly MethodInfo StorageDataPointer = typeof(torch).Assembly.GetType("TorchSharp.PInvoke.NativeMethods")
        ?.GetMethod("THSStorage_data_ptr", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(IntPtr)])
        ?? throw new MissingMethodException("TorchSharp's NativeMethods.THSStorage_data_ptr(IntPtr) was not found");

    static IntPtr DataPointer(Tensor t) => (IntPtr)StorageDataPointer.Invoke(null, [t.Handle])!;

    /// <summary>A new tensor over the same memory, outside any dispose scope (the model that takes it owns the handle).</summary>
    static Tensor Share(Tensor t) => t.detach().DetachFromDisposeScope();

    static (QuantizationKind Kind, bool DoubleQuant)? QuantizedParts(IReadOnlyDictionary<string, Tensor> source, string layer) =>
        source.ContainsKey($"{layer}.weight_nf4") ? (QuantizationKind.Nf4, source.ContainsKey($"{layer}.weight_absmax_scale"))
        : source.ContainsKey($"{layer}.weight_int8") ? (QuantizationKind.Int8, false)
        : null;

    static IEnumerable<(string Prefix, nn.Module Module)> Modules(nn.Module root) =>
        new[] { ("", root) }.Concat(root.named_modules().Where(m => m.name.Length > 0).Select(m => (m.name, m.module)));

    static readonly MethodInfo Register = typeof(nn.Module).GetMethod("ConditionallyRegisterParameter",
        BindingFlags.Instance | BindingFlags.NonPublic, [typeof(string), typeof(Parameter)])
        ?? throw new MissingMethodException("TorchSharp's Module.ConditionallyRegisterParameter(string, Parameter) was not found");

    /// <summary>
    /// Installs <paramref name="p"/> as <paramref name="module"/>'s parameter <paramref name="name"/> the way TorchSharp's
    /// own <c>Module.to()</c> replaces one: through a public property of that name (nn.Embedding, nn.LayerNorm), else in
    /// the module's registry and the field of that name (RLFT's modules).
    /// </summary>
    static void Replace(nn.Module module, string name, Parameter p)
    {
        var property = module.GetType().GetProperty(name, BindingFlags.Public | BindingFlags.Instance);
        if (property is { CanWrite: true } && property.PropertyType.IsAssignableFrom(typeof(Parameter)))
        {
            property.SetValue(module, p);
            return;
        }
        Register.Invoke(module, [name, p]);
        for (var type = module.GetType(); type is not null; type = type.BaseType)
            if (type.GetField(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly) is { } field)
            {
                field.SetValue(module, p);
                return;
            }
        throw new InvalidOperationException($"{module.GetType().Name}.{name}: no property or field holds this parameter");
    }
}
