using System.Globalization;
using Rlft.Rollout.Data;

namespace Rlft.Rollout.Tasks;

/// <summary>
/// One task of the <see cref="TaskFamily"/>: an operation on two digits, asked as "<c>{Verb} {a} and {b}:</c>" and
/// answered " {result}.". Every task has the same prompt shape and answer format; only the operation differs.
/// </summary>
internal sealed record FamilyTask(string Name, string Verb, string Description, Func<int, int, int> Apply)
{
    public string Prompt(int a, int b) => $"{Verb} {a} and {b}:";

    /// <summary>The right completion: " 7." for add 3 and 4.</summary>
    public string Completion(int a, int b) => $" {Answer(a, b)}.";

    public string Answer(int a, int b) => Apply(a, b).ToString(CultureInfo.InvariantCulture);

    public override string ToString() => Name;
}

/// <summary>
/// The built-in task family: short arithmetic on two digits with different operators, so that "new task" and "earlier
/// task" have precise meanings for meta-learning and sequential fine-tuning. The tasks share their prompt shape
/// ("<c>max 3 and 8:</c>"), their operands (0–9) and their answer format (" 8."), and differ in the operation; the
/// verbs and numbers are words the review task's tokenizer corpus already has or spells with a few byte tokens.
/// Each task has, deterministically from a seed:
/// <list type="bullet">
/// <item>SFT pairs and held-out SFT pairs (a held-out loss): prompt → the right answer;</item>
/// <item>prompts with verifiable answers, and held-out prompts (another seed);</item>
/// <item>preference pairs: the right answer over the answer another task of the family gives for the same operands
/// (a wrong number otherwise), so the rejected completion is the confusable one.</item>
/// </list>
/// The reward (<see cref="Score"/>) is 1 when the last number of the completion's first sentence is the answer, else
/// 0. Held-out prompts are drawn with other seeds from the same 100 operand pairs (as the review task's held-out
/// sums are): with 100 pairs in all they measure whether a task was learnt, not generalisation to unseen pairs.
/// <c>builtin:family/&lt;task&gt;</c> names a task's data in a job (<see cref="DatasetNames"/>).
/// </summary>
internal static class TaskFamily
{
    /// <summary>The family's tasks, in a fixed order (an index into it is a task id).</summary>
    public static readonly IReadOnlyList<FamilyTask> Tasks =
    [
        new("add", "add", "the sum a + b", (a, b) => a + b),
        new("diff", "diff", "the distance |a − b|", (a, b) => Math.Abs(a - b)),
        new("times", "times", "the product a × b", (a, b) => a * b),
        new("max", "max", "the larger of a and b", Math.Max),
        new("min", "min", "the smaller of a and b", Math.Min),
        new("join", "join", "the two-digit number 10a + b (the digits side by side)", (a, b) => 10 * a + b),
    ];

    /// <summary>Names of the family's tasks, in order.</summary>
    public static IReadOnlyList<string> Names { get; } = Tasks.Select(t => t.Name).ToArray();

    /// <summary>The datasets each task has: <c>builtin:family/&lt;task&gt;/&lt;part&gt;</c>; <c>builtin:family/&lt;task&gt;</c> alone is its sft part.</summary>
    public static readonly string[] Parts = ["sft", "eval-sft", "prompts", "eval-prompts", "preferences"];

    /// <summary>The reward's known maximum.</summary>
    public const double MaxReward = 1.0;

    /// <summary>Operands are digits 0–9.</summary>
    public const int OperandCount = 10;

    public static bool TryGet(string name, out FamilyTask task)
    {
        task = Tasks.FirstOrDefault(t => t.Name == name)!;
        return task is not null;
    }

    /// <summary>The task named <paramref name="name"/>; an unknown name is refused with the known ones.</summary>
    public static FamilyTask Get(string name) =>
        TryGet(name, out var task) ? task : throw new ArgumentException($"unknown task '{name}' in the built-in family (tasks: {string.Join(", ", Names)})");

    /// <summary>The family task whose verb opens <paramref name="prompt"/>, or null.</summary>
    public static FamilyTask? TaskOf(string prompt)
    {
        int space = prompt.IndexOf(' ');
        if (space <= 0) return null;
        string verb = prompt[..space];
        return Tasks.FirstOrDefault(t => t.Verb == verb);
    }

    /// <summary>Every built-in dataset name of the family: <c>family/add</c>, <c>family/add/sft</c>, … <c>family/join/preferences</c>.</summary>
    public static IEnumerable<string> DatasetNames() =>
        Names.SelectMany(t => Parts.Select(p => $"family/{t}/{p}").Prepend($"family/{t}"));

    // ---- data ------------------------------------------------------------------------------------

    /// <summary>
    /// A task-and-seed specific generator: the task's index is mixed into the seed, so that two tasks' data drawn with
    /// one seed use different operands (a multi-task mix does not repeat one operand sequence across tasks).
    /// </summary>
    static Random Rng(FamilyTask task, int seed) => new(unchecked(seed * 7919 + IndexOf(task) * 104_729 + 17));

    static int IndexOf(FamilyTask task)
    {
        for (int i = 0; i < Tasks.Count; i++) if (Tasks[i].Name == task.Name) return i;
        throw new ArgumentException($"'{task.Name}' is not a task of the built-in family");
    }

    static (int A, int B) Operands(Random rng) => (rng.Next(OperandCount), rng.Next(OperandCount));

    /// <summary>SFT pairs: prompt → the right answer.</summary>
    public static List<SftExample> Sft(FamilyTask task, int count, int seed)
    {
        var rng = Rng(task, seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var (a, b) = Operands(rng);
            return new SftExample(task.Prompt(a, b), task.Completion(a, b));
        }).ToList();
    }

    /// <summary>Prompts with their verifiable answers (online stages); held-out sets use another seed.</summary>
    public static List<PromptExample> Prompts(FamilyTask task, int count, int seed)
    {
        var rng = Rng(task, seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var (a, b) = Operands(rng);
            return new PromptExample(task.Prompt(a, b), task.Answer(a, b));
        }).ToList();
    }

    /// <summary>
    /// Preference pairs: the right answer chosen; rejected the answer of the first other task of the family that
    /// answers these operands differently (the confusable mistake), or the right answer plus one when all agree.
    /// </summary>
    public static List<PreferenceExample> Preferences(FamilyTask task, int count, int seed)
    {
        var rng = Rng(task, seed);
        var others = Tasks.Where(t => t.Name != task.Name).ToList();
        return Enumerable.Range(0, count).Select(_ =>
        {
            var (a, b) = Operands(rng);
            int right = task.Apply(a, b);
            int start = rng.Next(others.Count);
            int wrong = Enumerable.Range(0, others.Count).Select(k => others[(start + k) % others.Count].Apply(a, b))
                .Where(v => v != right).DefaultIfEmpty(right + 1).First();
            return new PreferenceExample(task.Prompt(a, b), task.Completion(a, b), $" {wrong.ToString(CultureInfo.InvariantCulture)}.");
        }).ToList();
    }

    /// <summary>
    /// A multi-task SFT mix: <paramref name="count"/> pairs, each from a task of <paramref name="tasks"/> drawn
    /// uniformly (the multi-task baseline of the meta-learning comparison).
    /// </summary>
    public static List<SftExample> Mixed(IReadOnlyList<FamilyTask> tasks, int count, int seed)
    {
        if (tasks.Count == 0) throw new ArgumentException("a mix needs at least one task", nameof(tasks));
        var pick = new Random(seed);
        var streams = tasks.Select(t => (Task: t, Rng: Rng(t, seed))).ToList();
        return Enumerable.Range(0, count).Select(_ =>
        {
            var (task, rng) = streams[pick.Next(streams.Count)];
            var (a, b) = Operands(rng);
            return new SftExample(task.Prompt(a, b), task.Completion(a, b));
        }).ToList();
    }

    // ---- reward ----------------------------------------------------------------------------------

    /// <summary>
    /// The task reward in [0, 1]: 1 when the last number of the completion's first sentence (as
    /// <see cref="ReviewTask.FinalNumber"/> reads it: " 7." and " 3 plus 4 is 7." both answer 7) equals the answer,
    /// else 0. The answer is <paramref name="answer"/>, or computed from the prompt when it is a family prompt; a
    /// prompt of no family task with no answer scores 0.
    /// </summary>
    public static double Score(string prompt, string completion, string? answer = null)
    {
        answer ??= ExpectedAnswer(prompt);
        return answer is not null && ReviewTask.FinalNumber(completion) == answer ? 1.0 : 0.0;
    }

    /// <summary>The reward of one task: <see cref="Score"/> with the answer computed by <paramref name="task"/> from the prompt's operands.</summary>
    public static double ScoreAs(FamilyTask task, string prompt, string completion) =>
        Operands(prompt) is var (a, b) && ReviewTask.FinalNumber(completion) == task.Answer(a, b) ? 1.0 : 0.0;

    /// <summary>The answer a family prompt asks for, or null when the prompt is not one.</summary>
    public static string? ExpectedAnswer(string prompt) =>
        TaskOf(prompt) is { } task && Operands(prompt) is var (a, b) ? task.Answer(a, b) : null;

    /// <summary>The two operands of a prompt shaped "<c>verb a and b:</c>", or null.</summary>
    public static (int A, int B)? Operands(string prompt)
    {
        var parts = prompt.Trim().TrimEnd(':').Split(' ');
        return parts.Length == 4 && parts[2] == "and"
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int a)
            && int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out int b)
            ? (a, b) : null;
    }

    // ---- files -----------------------------------------------------------------------------------

    /// <summary>Text covering the family's vocabulary (every task's prompts and answers), to add to a tokenizer corpus.</summary>
    public static string TokenizerCorpus(int seed = 0) =>
        string.Join("\n", Tasks.SelectMany(t => Sft(t, 400, seed)).Select(e => e.Prompt + e.Completion));

    /// <summary>
    /// Writes one task's datasets as JSONL into <paramref name="directory"/> (<c>sft.jsonl</c>, <c>eval-sft.jsonl</c>,
    /// <c>prompts.jsonl</c>, <c>eval-prompts.jsonl</c>, <c>preferences.jsonl</c>); returns the paths by part name.
    /// Sizes follow the review task's: 2000 SFT pairs, 512 prompts, 64 held-out of each, 1000 preference pairs.
    /// </summary>
    public static IReadOnlyDictionary<string, string> WriteDatasets(FamilyTask task, string directory, int seed)
    {
        Directory.CreateDirectory(directory);
        var paths = Parts.ToDictionary(p => p, p => Path.Combine(directory, p + ".jsonl"));
        Jsonl.Write(paths["sft"], Sft(task, 2000, seed));
        Jsonl.Write(paths["eval-sft"], Sft(task, 64, seed + 1));
        Jsonl.Write(paths["prompts"], Prompts(task, 512, seed + 2));
        Jsonl.Write(paths["eval-prompts"], Prompts(task, 64, seed + 3));
        Jsonl.Write(paths["preferences"], Preferences(task, 1000, seed + 4));
        return paths;
    }
}
