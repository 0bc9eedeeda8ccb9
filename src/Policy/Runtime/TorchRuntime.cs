using System.Reflection;
using TorchSharp;

namespace Rlft.Policy.Runtime;

/// <summary>What a user reports when something goes wrong: versions, threads, devices, backend.</summary>
internal sealed record RuntimeReport(
    string RlftVersion,
    string DotNetVersion,
    string TorchSharpVersion,
    string LibTorchVersion,
    string Backend,
    int Threads,
    bool CudaAvailable,
    int CudaDeviceCount,
    string Os);

/// <summary>Device selection and a description of the libtorch runtime this process loaded.</summary>
internal static class TorchRuntime
{
    /// <summary>The libtorch backend this build was compiled against (MSBuild property RlftTorchBackend).</summary>
    public static string Backend =>
        typeof(TorchRuntime).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "RlftTorchBackend")?.Value ?? "cpu";

    public static RuntimeReport Describe()
    {
        string rlft = typeof(TorchRuntime).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        int plus = rlft.IndexOf('+');
        if (plus > 0) rlft = rlft[..plus];
        bool cuda = torch.cuda.is_available();
        return new RuntimeReport(
            RlftVersion: rlft,
            DotNetVersion: System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            TorchSharpVersion: typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown",
            LibTorchVersion: torch.__version__,
            Backend: Backend,
            Threads: torch.get_num_threads(),
            CudaAvailable: cuda,
            CudaDeviceCount: cuda ? torch.cuda.device_count() : 0,
            Os: System.Runtime.InteropServices.RuntimeInformation.OSDescription);
    }

    /// <summary>Resolves "auto" | "cpu" | "cuda" | "cuda:N" to a device; "cuda" without a GPU is an error.</summary>
    public static torch.Device ResolveDevice(string spec)
    {
        switch (spec.Trim().ToLowerInvariant())
        {
            case "auto": return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
            case "cpu": return torch.CPU;
            case var s when s == "cuda" || s.StartsWith("cuda:", StringComparison.Ordinal):
                if (!torch.cuda.is_available())
                    throw new ArgumentException($"device '{spec}' requested but CUDA is not available (backend '{Backend}'; build with -p:RlftTorchBackend=cuda on a machine with a GPU)");
                return torch.device(s);
            default:
                throw new ArgumentException($"unknown device '{spec}': expected auto, cpu, cuda or cuda:N");
        }
    }
}
