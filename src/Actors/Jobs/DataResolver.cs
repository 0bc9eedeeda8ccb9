using Rlft.Actors.Configuration;
using Rlft.Rollout.Tasks;

namespace Rlft.Actors.Jobs;

/// <summary>
/// Turns a stage's <c>data</c> value into a JSONL path: <c>builtin:NAME</c> names a dataset of the
/// built-in task (written into the run's data/ folder from the job seed on first use), anything else
/// is a file that must exist.
/// </summary>
public static class DataResolver
{
    public static readonly string[] BuiltinNames = ["sft", "prompts", "eval-prompts", "preferences", "sums", "eval-sums", "sums-sft", .. ChatTask.Names];

    /// <summary>True for the built-in datasets whose records are conversations (they need a chat template).</summary>
    public static bool IsConversational(string name) => ChatTask.Names.Contains(name);

    public static string Resolve(string data, string runDirectory, int seed, string keyPath)
    {
        if (data.StartsWith("builtin:", StringComparison.Ordinal))
        {
            string name = data["builtin:".Length..];
            if (!BuiltinNames.Contains(name))
                throw new ConfigException($"{keyPath}: unknown built-in dataset '{name}' (known: {string.Join(", ", BuiltinNames)})");
            string dir = Path.Combine(runDirectory, "data");
            string path = Path.Combine(dir, name + ".jsonl");
            if (!File.Exists(path)) ReviewTask.WriteDatasets(dir, seed);
            return path;
        }
        if (!File.Exists(data)) throw new ConfigException($"{keyPath}: dataset file not found: {data}");
        return Path.GetFullPath(data);
    }
}
