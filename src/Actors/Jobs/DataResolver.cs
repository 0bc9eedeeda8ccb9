using Rlft.Actors.Configuration;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;

namespace Rlft.Actors.Jobs;

/// <summary>
/// Turns a stage's <c>data</c> value into a JSONL path: <c>builtin:NAME</c> names a dataset of the
/// built-in task (written into the run's data/ folder from the job seed on first use), anything else
/// is a file that must exist. <c>builtin:family/TASK</c> and <c>builtin:family/TASK/PART</c> name the datasets
/// of the built-in task family (<see cref="TaskFamily"/>): TASK one of its tasks, PART one of sft (the default),
/// eval-sft, prompts, eval-prompts, preferences; each is written as data/NAME.jsonl.
/// </summary>
internal static class DataResolver
{
    public static readonly string[] BuiltinNames = ["sft", "prompts", "eval-prompts", "preferences", "sums", "eval-sums", "sums-sft", .. ChatTask.Names,
        .. EncoderDatasets.ClassificationBuiltins, .. EncoderDatasets.QaBuiltins];

    /// <summary>True for the built-in datasets of encoder stages (sentiment, eval-sentiment, qa, eval-qa).</summary>
    public static bool IsEncoderBuiltin(string name) => EncoderDatasets.ClassificationBuiltins.Contains(name) || EncoderDatasets.QaBuiltins.Contains(name);

    /// <summary>The prefix of the task family's dataset names.</summary>
    public const string FamilyPrefix = "family/";

    /// <summary>Every built-in dataset name: the built-in task's and each family task's (<c>family/add/prompts</c>, …).</summary>
    public static IEnumerable<string> AllBuiltinNames() => BuiltinNames.Concat(TaskFamily.DatasetNames());

    /// <summary>True for the built-in datasets whose records are conversations (they need a chat template).</summary>
    public static bool IsConversational(string name) => ChatTask.Names.Contains(name);

    /// <summary>
    /// Why <paramref name="name"/> (after <c>builtin:</c>) names no built-in dataset, or null when it names one.
    /// The message is the part after the key path.
    /// </summary>
    public static string? BuiltinProblem(string name)
    {
        if (!name.StartsWith(FamilyPrefix, StringComparison.Ordinal))
            return BuiltinNames.Contains(name) ? null
                : $"unknown built-in dataset '{name}' (known: {string.Join(", ", BuiltinNames)}, and family/TASK[/PART] for the task family)";
        var (task, part) = SplitFamily(name);
        if (task.Contains('+'))
        {
            // A multi-task mix, family/TASK+TASK+…: SFT pairs of those tasks drawn uniformly.
            var unknown = task.Split('+').FirstOrDefault(t => !TaskFamily.TryGet(t, out _));
            if (unknown is not null) return $"unknown task '{unknown}' in builtin:{name} (the family's tasks: {string.Join(", ", TaskFamily.Names)})";
            return part is null or "sft" ? null : $"a mix of family tasks (builtin:{name}) has sft data only";
        }
        if (!TaskFamily.TryGet(task, out _))
            return $"unknown task '{task}' in builtin:{name} (the family's tasks: {string.Join(", ", TaskFamily.Names)})";
        if (part is not null && !TaskFamily.Parts.Contains(part))
            return $"unknown dataset '{part}' of family task '{task}' in builtin:{name} (each task has: {string.Join(", ", TaskFamily.Parts)})";
        return null;
    }

    /// <summary>The family task and part a <c>family/TASK[/PART]</c> name asks for (part null: the sft data).</summary>
    public static (string Task, string? Part) SplitFamily(string name)
    {
        string rest = name[FamilyPrefix.Length..];
        int slash = rest.IndexOf('/');
        return slash < 0 ? (rest, null) : (rest[..slash], rest[(slash + 1)..]);
    }

    public static string Resolve(string data, string runDirectory, int seed, string keyPath)
    {
        if (data.StartsWith("builtin:", StringComparison.Ordinal))
        {
            string name = data["builtin:".Length..];
            if (BuiltinProblem(name) is { } problem) throw new ConfigException($"{keyPath}: {problem}");
            string dir = Path.Combine(runDirectory, "data");
            string path = Path.Combine(dir, name + ".jsonl");
            if (File.Exists(path)) return path;
            if (IsEncoderBuiltin(name)) EncoderDatasets.WriteBuiltin(name, path, seed);
            else if (!name.StartsWith(FamilyPrefix, StringComparison.Ordinal)) ReviewTask.WriteDatasets(dir, seed);
            else if (SplitFamily(name).Task is var task && task.Contains('+')) WriteMix(path, task, seed);
            else WriteFamilyTask(dir, task, seed);
            return path;
        }
        if (!File.Exists(data)) throw new ConfigException($"{keyPath}: dataset file not found: {data}");
        return Path.GetFullPath(data);
    }

    /// <summary>A mix of family tasks' SFT pairs (2000 per task, the size of one task's data) at <paramref name="path"/>.</summary>
    static void WriteMix(string path, string tasks, int seed)
    {
        var family = tasks.Split('+').Select(TaskFamily.Get).ToList();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Jsonl.Write(path, TaskFamily.Mixed(family, 2000 * family.Count, seed));
    }

    /// <summary>Writes a family task's parts into data/family/TASK/ and its sft data as data/family/TASK.jsonl too.</summary>
    static void WriteFamilyTask(string dataDirectory, string taskName, int seed)
    {
        string family = Path.Combine(dataDirectory, "family");
        var paths = TaskFamily.WriteDatasets(TaskFamily.Get(taskName), Path.Combine(family, taskName), seed);
        string plain = Path.Combine(family, taskName + ".jsonl");
        string tmp = Jsonl.TemporaryBeside(plain);
        File.Copy(paths["sft"], tmp, overwrite: true);
        File.Move(tmp, plain, overwrite: true);
    }
}
