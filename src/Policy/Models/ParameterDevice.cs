using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// The device new model parameters are created on, for the current thread only. Null (the default) leaves it to
/// libtorch's default device. <see cref="ModelFactory.CreateMeta"/> uses it to build a model on the <c>meta</c>
/// device — names and shapes, no memory — without touching <c>torch.set_default_device</c>, which is process-wide
/// and would move every other thread's new tensors too.
/// </summary>
public static class ParameterDevice
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
