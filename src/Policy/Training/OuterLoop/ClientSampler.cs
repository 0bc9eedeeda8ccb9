namespace Rlft.Policy.Training;

/// <summary>
/// Which clients take part in a round: <c>clients-per-round</c> of the clients available, drawn uniformly without
/// replacement from a generator seeded by (seed, round, attempt). The draw depends on the set of available ids, not on
/// the order they were listed in (they are sorted first), so a server that restarts or sees members join in another
/// order draws the same sample; a retried round (attempt + 1) draws a fresh one.
/// </summary>
internal sealed class ClientSampler(int clientsPerRound, int seed)
{
    public int ClientsPerRound { get; } = clientsPerRound > 0
        ? clientsPerRound
        : throw new ArgumentOutOfRangeException(nameof(clientsPerRound), $"clients-per-round must be at least 1, got {clientsPerRound}");

    /// <summary>
    /// The round's sample, in id order: all the available clients when there are no more than <see cref="ClientsPerRound"/>,
    /// else <see cref="ClientsPerRound"/> of them (a partial Fisher–Yates shuffle).
    /// </summary>
    public IReadOnlyList<string> Sample(IEnumerable<string> available, int round, int attempt = 0)
    {
        var ids = available.Distinct().Order(StringComparer.Ordinal).ToArray();
        if (ids.Length <= ClientsPerRound) return ids;
        var rng = new Random(Mix(seed, round, attempt));
        for (int i = 0; i < ClientsPerRound; i++)
        {
            int j = i + rng.Next(ids.Length - i);
            (ids[i], ids[j]) = (ids[j], ids[i]);
        }
        return ids.Take(ClientsPerRound).Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>A seed from the three numbers that is the same in every process (HashCode.Combine is randomized per process): SplitMix64 steps.</summary>
    static int Mix(int seed, int round, int attempt)
    {
        ulong x = (uint)seed;
        foreach (var v in new[] { (uint)round, (uint)attempt })
        {
            x = (x ^ v) + 0x9E3779B97F4A7C15UL;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            x ^= x >> 31;
        }
        return (int)(x & 0x7FFFFFFF);
    }
}
