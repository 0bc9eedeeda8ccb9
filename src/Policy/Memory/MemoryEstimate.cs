using System.Globalization;

namespace Rlft.Policy.Memory;

/// <summary>The roles an estimate's items belong to (the processes or actors that hold them).</summary>
public static class MemoryRole
{
    public const string Process = "process", Learner = "learner", WeightServer = "weight server", Rollout = "rollout", Reward = "reward";
    public static readonly string[] Ordered = [Learner, WeightServer, Rollout, Reward, Process];
}

/// <summary>
/// One thing the job holds: its role, what it is, and its bytes. <paramref name="HostOnly"/>: held in host memory
/// whatever the device (the runtime, serialized weights); the rest lives on the GPU when the job runs on one.
/// </summary>
public sealed record MemoryItem(string Role, string What, long Bytes, bool HostOnly = false);

/// <summary>The bytes a job holds at its largest stage, item by item.</summary>
public sealed record MemoryEstimate(string Stage, IReadOnlyList<MemoryItem> Items)
{
    public long Total => Items.Sum(i => i.Bytes);

    /// <summary>What a GPU would hold of it: every item but the host-only ones.</summary>
    public long DeviceBytes => Items.Where(i => !i.HostOnly).Sum(i => i.Bytes);

    /// <summary>Bytes per role, in <see cref="MemoryRole.Ordered"/> order (roles holding nothing left out).</summary>
    public IReadOnlyList<(string Role, long Bytes)> ByRole => MemoryRole.Ordered
        .Select(r => (r, Items.Where(i => i.Role == r).Sum(i => i.Bytes))).Where(x => x.Item2 > 0).ToList();

    public long Of(string role) => Items.Where(i => i.Role == role).Sum(i => i.Bytes);

    /// <summary>The few lines <c>rlft run</c> prints: per role and the total.</summary>
    public IEnumerable<string> Summary()
    {
        yield return $"memory estimate (largest stage: {Stage}): {Human(Total)} in all";
        foreach (var (role, bytes) in ByRole) yield return $"  {role,-14} {Human(bytes),10}";
    }

    /// <summary>The table <c>rlft estimate</c> prints: every item under its role, each role's sum, and the total.</summary>
    public IEnumerable<string> Table()
    {
        yield return $"largest stage: {Stage}";
        foreach (var (role, bytes) in ByRole)
        {
            yield return $"{role,-52} {Human(bytes),10}";
            foreach (var item in Items.Where(i => i.Role == role))
                yield return $"  {item.What,-50} {Human(item.Bytes),10}";
        }
        yield return $"{"total",-52} {Human(Total),10}";
    }

    /// <summary>Binary units, three significant figures: 812 MiB, 1.95 GiB.</summary>
    public static string Human(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        int u = 0;
        while (Math.Abs(v) >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        string number = u == 0 ? v.ToString("0", CultureInfo.InvariantCulture)
            : v.ToString(v >= 100 ? "0" : v >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture);
        return $"{number} {units[u]}";
    }
}
