using System.CommandLine;
using Rlft.Policy.Runtime;

namespace Rlft.Host.Commands;

/// <summary>`rlft info`: what a user needs to report a problem.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Print RLFT, .NET and libtorch versions, threads, CUDA devices and the backend.");
        command.SetAction(result =>
        {
            var r = TorchRuntime.Describe();
            var o = result.InvocationConfiguration.Output;
            o.WriteLine($"rlft        {r.RlftVersion}");
            o.WriteLine($"dotnet      {r.DotNetVersion}");
            o.WriteLine($"os          {r.Os}");
            o.WriteLine($"torchsharp  {r.TorchSharpVersion}");
            o.WriteLine($"libtorch    {r.LibTorchVersion}");
            o.WriteLine($"backend     {r.Backend}");
            o.WriteLine($"threads     {r.Threads}");
            o.WriteLine($"cuda        {(r.CudaAvailable ? "available" : "not available")} ({r.CudaDeviceCount} device{(r.CudaDeviceCount == 1 ? "" : "s")})");
            return 0;
        });
        return command;
    }
}
