using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;

namespace Rlft.Host.Bench;

/// <summary>
/// What the benches that run configurations at real shapes share: random checkpoints of the presets, written once and
/// kept in $TMPDIR/rlft-bench-models between runs, and one configuration run in a process of its own
/// (<c>rlft bench-case …</c>) so that its peak resident memory is its own.
/// </summary>
internal static class BenchCases
{
    /// <summary>The cached random checkpoint of <paramref name="preset"/> (written through a .partial folder, so a killed run leaves none half-written).</summary>
    public static string ModelDirectory(string preset, string? arch = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlft-bench-models", arch is null ? preset : $"{arch}-{preset}");
        if (!File.Exists(Path.Combine(dir, Checkpoint.ConfigFile)))
        {
            string partial = dir + ".partial";
            if (Directory.Exists(partial)) Directory.Delete(partial, true);
            ModelPresets.Write(arch, preset, partial, seed: 1);
            Rlft.Policy.Runtime.NativeHeap.Trim();
            Directory.Move(partial, dir);
        }
        return dir;
    }

    /// <summary>True when <c>taskset</c> can pin child processes to CPUs here.</summary>
    public static bool CanPin => File.Exists("/usr/bin/taskset") || File.Exists("/bin/taskset");

    /// <summary>
    /// Runs <c>rlft <paramref name="args"/></c> as a child process and returns the last JSON line it printed, or a line
    /// with <c>error</c> (its exit code and the last line of its stderr) when it failed.
    /// </summary>
    /// <param name="cpus">Pins the process (every thread it starts) to these CPUs with taskset; null: not pinned.</param>
    public static JsonObject RunChild(IEnumerable<string> args, string? cpus = null)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the rlft executable to start a benchmark process");
        var start = new ProcessStartInfo(cpus is null ? self : "taskset") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (cpus is not null) foreach (var a in new[] { "-c", cpus, self }) start.ArgumentList.Add(a);
        // Run through `dotnet rlft.dll`: the entry assembly comes first.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(BenchCases).Assembly.Location);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start) ?? throw new InvalidOperationException($"could not start {self}");
        var stderr = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        string? json = output.Split('\n').LastOrDefault(l => l.StartsWith('{'));
        // A case that failed in a way it can describe prints its line with the error and exits non-zero.
        if (json is not null && JsonNode.Parse(json)!.AsObject() is var line && (p.ExitCode == 0 || line.ContainsKey("error"))) return line;
        if (p.ExitCode != 0 || json is null)
            return new JsonObject { ["error"] = $"bench-case exited {p.ExitCode}: {stderr.Result.Trim().Split('\n').LastOrDefault()}" };
        return JsonNode.Parse(json)!.AsObject();
    }
}
