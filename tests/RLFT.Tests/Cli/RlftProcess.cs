using System.Collections.Concurrent;
using System.Diagnostics;

namespace Rlft.Tests.Cli;

/// <summary>
/// The built `rlft` executable as a separate process (as a user starts it), its output collected; started once
/// it prints the line that says it is ready. Dispose kills it if it still runs.
/// </summary>
public sealed class RlftProcess : IDisposable
{
    readonly ConcurrentQueue<string> _log;

    public Process Process { get; }
    /// <summary>The line that said it was ready.</summary>
    public string ReadyLine { get; }
    public string Log => string.Join("\n", _log);

    RlftProcess(Process process, ConcurrentQueue<string> log, string readyLine) => (Process, _log, ReadyLine) = (process, log, readyLine);

    public static async Task<RlftProcess> StartAsync(IEnumerable<string> args, string readyWhen, CancellationToken ct, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlft.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        var log = new ConcurrentQueue<string>();
        var ready = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            log.Enqueue(e.Data);
            if (e.Data.Contains(readyWhen, StringComparison.Ordinal)) ready.TrySetResult(e.Data);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) log.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var first = await Task.WhenAny(ready.Task, process.WaitForExitAsync(ct), Task.Delay(TimeSpan.FromSeconds(90), ct));
        if (first != ready.Task)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
            throw new InvalidOperationException($"rlft {string.Join(' ', args)} did not start: {string.Join("\n", log)}");
        }
        return new RlftProcess(process, log, await ready.Task);
    }

    /// <summary>SIGKILL: no goodbye to anyone.</summary>
    public void Kill() => Process.Kill(entireProcessTree: true);

    public void Dispose()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        Process.Dispose();
    }
}
