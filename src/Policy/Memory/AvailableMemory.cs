using System.Globalization;

namespace Rlft.Policy.Memory;

/// <summary>
/// The memory a job started now can use: the smallest of the machine's available memory (<c>MemAvailable</c> in
/// /proc/meminfo; elsewhere what the .NET runtime reports), the room left under a cgroup's limit (v2 <c>memory.max</c>
/// minus <c>memory.current</c>, or v1's files), and <c>RLFT_MEMORY_LIMIT</c> when set (bytes, or with a K/M/G/T
/// suffix: 8G), which tests and users with a tighter budget give.
/// </summary>
public static class AvailableMemory
{
    public const string LimitVariable = "RLFT_MEMORY_LIMIT";

    /// <summary>The bytes available and where that figure comes from ("MemAvailable", "cgroup memory.max", "RLFT_MEMORY_LIMIT").</summary>
    public static (long Bytes, string Source) Read()
    {
        var candidates = new List<(long Bytes, string Source)>();
        if (Environment.GetEnvironmentVariable(LimitVariable) is { Length: > 0 } text)
            candidates.Add((ParseSize(text) ?? throw new ArgumentException($"{LimitVariable}={text}: expected bytes or a size such as 8G"), LimitVariable));
        if (MemInfoAvailable() is long available) candidates.Add((available, "MemAvailable"));
        else candidates.Add((GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, "the runtime's available memory"));
        if (CgroupRoom() is long room) candidates.Add((room, "cgroup memory limit"));
        return candidates.MinBy(c => c.Bytes);
    }

    /// <summary>"8G", "512M", "1.5G", "1073741824" → bytes; null when it is none of these.</summary>
    public static long? ParseSize(string text)
    {
        text = text.Trim();
        if (text.Length == 0) return null;
        long unit = char.ToUpperInvariant(text[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, 'T' => 1L << 40, _ => 1 };
        if (unit != 1) text = text[..^1];
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0 ? (long)(v * unit) : null;
    }

    static long? MemInfoAvailable()
    {
        const string path = "/proc/meminfo";
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadLines(path))
            if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return null;
    }

    static long? CgroupRoom()
    {
        // v2: the process's own group is named in /proc/self/cgroup as "0::/path".
        string? group = File.Exists("/proc/self/cgroup")
            ? File.ReadLines("/proc/self/cgroup").FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..]
            : null;
        foreach (var (max, current) in new[]
        {
            ($"/sys/fs/cgroup{group}/memory.max", $"/sys/fs/cgroup{group}/memory.current"),
            ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        })
        {
            if (Number(max) is long limit && Number(current) is long used && limit < (1L << 60)) return Math.Max(0, limit - used);
        }
        return null;
    }

    static long? Number(string path)
    {
        try { return File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), out long v) ? v : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>The process's peak resident set (VmHWM) in bytes; null where /proc is not there.</summary>
    public static long? PeakResident()
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadLines(path))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return null;
    }
}
