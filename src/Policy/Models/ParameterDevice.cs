using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// The device new model parameters are created on, for the current thread only. Null (the default) leaves it to
/// libtorch's default device. <see cref="ModelFactory.CreateMeta"/> uses it to build a model on the <c>meta</c>
/// device — names and shapes, no memory — without touching <c>torch.set_default_device</c>, which is process-wide
/// and would move every other thread's new tensors too.
/// </summary>
internal static class ParameterDevice
{
    [ThreadStatic] static Device? _current;

    /// <summary>Where the module being constructed on this thread puts its parameters (null: libtorch's default).</summary>
    public static Device? Current => _current;

    /// <summary>Parameters created on this thread until the scope is disposed go to <paramref name="device"/>.</summary>
    public static IDisposable Use(Device device)
    {
        var previous = _current;
        _current = device;
        return new Restore(previous);
    }

    sealed class Restore(Device? previous) : IDisposable
    {
        public void Dispose() => _current = previous;
    }
}

/// <summary>Embedding tables on <see cref="ParameterDevice.Current"/>.</summary>
internal static class Embeddings
{
    /// <summary>
    /// <c>nn.Embedding(count, dim, padding_idx)</c> on <paramref name="device"/> (null: libtorch's default). On the meta
    /// device the table is a meta tensor only: libtorch's Embedding module first builds and initialises its table on
    /// the CPU and keeps that memory for as long as the module lives even once its weight is on meta — 0.5 GB for
    /// Qwen2-0.5B's vocabulary, in every replica built to share a learner's weights. So a meta table starts from the
    /// smallest module that keeps the padding index valid, and takes a meta weight of the full shape; a shared or
    /// loaded weight then replaces it as usual.
    /// </summary>
    public static Embedding Create(long count, long dim, long? paddingIdx = null, Device? device = null)
    {
        if (device?.type != DeviceType.META) return nn.Embedding(count, dim, padding_idx: paddingIdx, device: device);
        var table = nn.Embedding(paddingIdx is long p ? p + 1 : 1, dim, padding_idx: paddingIdx, device: device);
        table.weight = new Parameter(empty(count, dim, device: device));
        return table;
    }
}
