using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Rlft.Policy.Runtime;

/// <summary>
/// libtorch's intra-op threads are OpenMP's (libgomp). By default an idle libgomp thread spins on its core for a while
/// after each parallel region before it sleeps; with two cores and one libtorch op after another, that thread holds the
/// second core almost all the time, so nothing else in the process gets it: not the .NET thread pool (Akka's
/// dispatchers, <see cref="Models.DecodeLinear"/>'s second half, the collectives' sockets). Measured at the GPT-2 124M
/// shape, batch 8: the small-batch projection ran on one core while libgomp's thread spun at 35% of the process's
/// samples; with passive waits a decoding step took 72–82 ms instead of 98–116 ms. libgomp reads
/// <c>OMP_WAIT_POLICY</c> once, when libtorch is loaded, so this sets it in the process environment first
/// (<see cref="Prefer"/> runs as the module initializer, before any code of this library touches libtorch); a value the
/// user set is kept.
/// </summary>
internal static partial class OpenMpWaits
{
    public const string Variable = "OMP_WAIT_POLICY";

#pragma warning disable CA2255 // a library module initializer: libgomp must see the variable before libtorch loads
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Prefer()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Variable) is not null) return;
        try { _ = setenv(Variable, "PASSIVE", 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
