using Rlft.Rollout.Data;

namespace Rlft.Rollout.Tasks;

/// <summary>
/// Non-IID shards of the built-in task for federated runs: client i of n holds the reviews of the items whose index is
/// i modulo n (client 0 also holds the sums), as SFT pairs (<c>client-i/sft.jsonl</c>) and preference pairs
/// (<c>client-i/preferences.jsonl</c>); beside them held-out sets of every item (<c>eval-sft.jsonl</c>,
/// <c>eval-preferences.jsonl</c>) drawn with other seeds, for the server's before/after figures.
/// </summary>
internal static class FederatedShards
{
    /// <summary>Which client holds <paramref name="prompt"/> (by its item; prompts without one go to client 0).</summary>
    public static int ShardOf(string prompt, int clients)
    {
        int item = Array.FindIndex(ReviewTask.Items, it => prompt.Contains(it, StringComparison.Ordinal));
        return item < 0 ? 0 : item % clients;
    }

    /// <summary>Writes the shards and held-out sets under <paramref name="directory"/>; returns each client's folder.</summary>
    public static IReadOnlyList<string> Write(string directory, int clients, int seed, int sftPerClient = 300, int pairsPerClient = 150)
    {
        if (clients < 1 || clients > ReviewTask.Items.Length) throw new ArgumentOutOfRangeException(nameof(clients), $"between 1 and {ReviewTask.Items.Length} clients");
        var sft = ReviewTask.SftCorpus(sftPerClient * clients * 2, seed);
        var pairs = ReviewTask.Preferences(pairsPerClient * clients * 2, seed + 1);
        var folders = new List<string>();
        for (int i = 0; i < clients; i++)
        {
            string folder = Path.Combine(directory, $"client-{i}");
            Jsonl.Write(Path.Combine(folder, "sft.jsonl"), sft.Where(e => ShardOf(e.Prompt, clients) == i).Take(sftPerClient));
            Jsonl.Write(Path.Combine(folder, "preferences.jsonl"), pairs.Where(e => ShardOf(e.Prompt, clients) == i).Take(pairsPerClient));
            folders.Add(folder);
        }
        Jsonl.Write(Path.Combine(directory, "eval-sft.jsonl"), ReviewTask.SftCorpus(96, seed + 77));
        Jsonl.Write(Path.Combine(directory, "eval-preferences.jsonl"), ReviewTask.Preferences(64, seed + 78));
        return folders;
    }
}
