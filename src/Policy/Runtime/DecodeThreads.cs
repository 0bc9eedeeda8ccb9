using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Runtime;

/// <summary>
/// A decoding step is ~100 libtorch ops on a few rows each (layer norms, the attention over the cache, the sampler's
/// softmax). Each op that libtorch splits over its OpenMP threads wakes the sleeping second thread (passive waits,
/// <see cref="OpenMpWaits"/>), which on a 2-core machine cost 70–95 µs per layer norm against 7–12 µs run inline.
/// Inside <see cref="Inline"/> the calling thread's OpenMP thread count is 1 (<c>omp_set_num_threads</c>, which sets
/// only this thread's value; <c>torch.set_num_threads</c> would also change the count that threads first touching libtorch
/// start with), while RLFT's own kernels (<see cref="Models.DecodeLinear"/>, NF4) keep splitting their products
/// over <see cref="KernelParts"/> .NET threads. Without the OpenMP export (another libtorch build) it does nothing.
/// </summary>
internal static class DecodeThreads
{
    delegate void SetThreads(int n);
    static readonly SetThreads? s_set = Resolve();
    [ThreadStatic] static int t_parts;
    [ThreadStatic] static bool t_disabled;

    /// <summary>Off, on the calling thread only: for benchmarks that time both ways in one process.</summary>
    internal static bool Disabled { get => t_disabled; set => t_disabled = value; }

    /// <summary>How many parts RLFT's kernels split a product into on this thread.</summary>
    public static int KernelParts => t_parts > 0 ? t_parts : Math.Max(1, get_num_threads());

    /// <summary>libtorch's ops inline on this thread until disposed (CPU only); RLFT's kernels keep the thread count.</summary>
    public static Scope Inline(Device device)
    {
        int threads = get_num_threads();
        if (s_set is null || t_disabled || device.type != DeviceType.CPU || threads <= 1 || t_parts > 0) return default;
        t_parts = threads;
        s_set(1);
        return new Scope(threads);
    }

    public readonly struct Scope(int threads) : IDisposable
    {
        public void Dispose()
        {
            if (threads == 0) return;
            s_set!(threads);
            t_parts = 0;
        }
    }

    static SetThreads? Resolve()
    {
        try
        {
            get_num_threads();   // libtorch (and its OpenMP runtime) loaded
            foreach (var name in new[] { "libtorch_cpu.so", "libtorch_cpu.dylib" })
                if (NativeLibrary.TryLoad(name, typeof(torch).Assembly, null, out var lib) && NativeLibrary.TryGetExport(lib, "omp_set_num_threads", out var f))
                    return Marshal.GetDelegateForFunctionPointer<SetThreads>(f);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException) { }
        return null;
    }
}
