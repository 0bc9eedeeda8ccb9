using System.Globalization;
using Rlft.Rollout.Data;

namespace Rlft.Rollout.Tasks;

/// <summary>
/// The built-in task: a tiny generated language, deterministic from a seed, that tiny models learn in
/// seconds on two cores. Two kinds of prompt:
/// <list type="bullet">
/// <item>reviews — "review the movie:" → " the movie was great and fun." The reward is the share of
/// sentiment words that are positive (max 1.0), 0 for a malformed review. The SFT corpus mixes positive
/// and negative words at random, so an SFT policy scores about 0.5 and RL has room to climb.</item>
/// <item>sums — "add 3 and 4:" → " 7." (or worked: " 3 plus 4 is 7.") with a verifiable answer: the final number
/// of the completion's first sentence must equal it.</item>
/// </list>
/// </summary>
internal static class ReviewTask
{
    public static readonly string[] Items = ["movie", "book", "song", "game", "meal", "show", "album", "hotel", "park", "class", "trip", "film"];
    public static readonly string[] Positive = ["great", "good", "fun", "lovely", "superb", "nice", "bright", "warm"];
    public static readonly string[] Negative = ["bad", "dull", "awful", "boring", "poor", "sad", "weak", "cold"];
    static readonly string[] Adverbs = ["very", "quite", "really", "so", "rather"];

    /// <summary>The task's reward has this known maximum.</summary>
    public const double MaxReward = 1.0;

    public static string ReviewPrompt(string item) => $"review the {item}:";
    public static string SumPrompt(int a, int b) => $"add {a} and {b}:";

    /// <summary>A review with each of its adjectives positive with probability <paramref name="positiveRate"/>.</summary>
    public static string Review(Random rng, string item, double positiveRate)
    {
        string Adj() => rng.NextDouble() < positiveRate ? Positive[rng.Next(Positive.Length)] : Negative[rng.Next(Negative.Length)];
        return rng.Next(3) switch
        {
            0 => $" the {item} was {Adj()} and {Adj()}.",
            1 => $" the {item} was {Adverbs[rng.Next(Adverbs.Length)]} {Adj()}.",
            _ => $" it was a {Adj()} {item} and {Adj()}.",
        };
    }

    /// <summary>SFT pairs: reviews of random sentiment and correct sums, in a seeded mix.</summary>
    public static List<SftExample> SftCorpus(int count, int seed, double sumFraction = 0.3)
    {
        var rng = new Random(seed);
        var list = new List<SftExample>(count);
        for (int i = 0; i < count; i++)
        {
            if (rng.NextDouble() < sumFraction)
            {
                int a = rng.Next(10), b = rng.Next(10);
                list.Add(new SftExample(SumPrompt(a, b), $" {a + b}."));
            }
            else
            {
                string item = Items[rng.Next(Items.Length)];
                list.Add(new SftExample(ReviewPrompt(item), Review(rng, item, 0.5)));
            }
        }
        return list;
    }

    /// <summary>Review prompts for RL; held-out sets use another seed.</summary>
    public static List<PromptExample> ReviewPrompts(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => new PromptExample(ReviewPrompt(Items[rng.Next(Items.Length)]))).ToList();
    }

    /// <summary>Sum prompts with verifiable answers (GRPO-style tasks).</summary>
    public static List<PromptExample> SumPrompts(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            int a = rng.Next(10), b = rng.Next(10);
            return new PromptExample(SumPrompt(a, b), (a + b).ToString(CultureInfo.InvariantCulture));
        }).ToList();
    }

    /// <summary>
    /// SFT pairs for the sums, worked: the completion names an operation and its result. Half the time it is the
    /// one the prompt asks for (" 3 plus 4 is 7."), half the time another (" 3 times 4 is 12."): the SFT policy
    /// learns the format and both operations, and a verifiable reward has a clear thing to teach it — which
    /// operation "add" means — as the review corpus's mixed sentiment leaves room for the review reward.
    /// </summary>
    public static List<SftExample> WorkedSums(int count, int seed, double rightOperation = 0.5)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            int a = rng.Next(10), b = rng.Next(10);
            return new SftExample(SumPrompt(a, b), rng.NextDouble() < rightOperation ? $" {a} plus {b} is {a + b}." : $" {a} times {b} is {a * b}.");
        }).ToList();
    }

    /// <summary>Preference pairs whose chosen review scores strictly higher under <see cref="Score"/>.</summary>
    public static List<PreferenceExample> Preferences(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<PreferenceExample>(count);
        while (list.Count < count)
        {
            string item = Items[rng.Next(Items.Length)];
            string x = Review(rng, item, 0.5), y = Review(rng, item, 0.5);
            double sx = Score(ReviewPrompt(item), x), sy = Score(ReviewPrompt(item), y);
            if (sx == sy) continue;
            list.Add(sx > sy ? new PreferenceExample(ReviewPrompt(item), x, y) : new PreferenceExample(ReviewPrompt(item), y, x));
        }
        return list;
    }

    /// <summary>
    /// The task reward in [0, <see cref="MaxReward"/>]. Reviews: share of sentiment words that are positive
    /// (0 when there are none, or when the review does not end its first sentence with a period).
    /// Sums: 1 when the first number equals the answer (computed from the prompt when not given). The other prompts of
    /// the <see cref="TaskFamily"/> ("max 3 and 8:", …) score by its rule, so every built-in dataset's prompts have
    /// their reward here (the sums are the family's add task).
    /// </summary>
    public static double Score(string prompt, string completion, string? answer = null)
    {
        string text = completion.Trim();
        if (!prompt.StartsWith("add ", StringComparison.Ordinal) && TaskFamily.TaskOf(prompt) is not null)
            return TaskFamily.Score(prompt, completion, answer);
        if (prompt.StartsWith("add ", StringComparison.Ordinal))
        {
            answer ??= ExpectedSum(prompt);
            return answer is not null && FinalNumber(text) == answer ? 1.0 : 0.0;
        }
        int stop = text.IndexOf('.');
        if (stop < 0) return 0.0;
        var (pos, neg) = CountSentiment(text[..stop].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        return pos + neg == 0 ? 0.0 : (double)pos / (pos + neg);
    }

    /// <summary>
    /// The answer a sum's completion gives: the last number of its first sentence (" 7." and a worked
    /// " 3 plus 4 is 7." both answer 7); null when that sentence holds no number.
    /// </summary>
    public static string? FinalNumber(string completion)
    {
        string text = completion.Trim();
        int stop = text.IndexOf('.');
        var numbers = System.Text.RegularExpressions.Regex.Matches(stop < 0 ? text : text[..stop], @"-?\d+");
        return numbers.Count == 0 ? null : numbers[^1].Value;
    }

    /// <summary>How many of <paramref name="words"/> are positive and how many negative sentiment words.</summary>
    public static (int Positive, int Negative) CountSentiment(IReadOnlyCollection<string> words, StringComparer? comparer = null) =>
        (words.Count(w => Positive.Contains(w, comparer)), words.Count(w => Negative.Contains(w, comparer)));

    static string? ExpectedSum(string prompt)
    {
        var parts = prompt.TrimEnd(':').Split(' ');
        return parts.Length == 4 && int.TryParse(parts[1], out int a) && int.TryParse(parts[3], out int b)
            ? (a + b).ToString(CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Text covering the task's vocabulary, for training the tiny models' tokenizer.</summary>
    public static string TokenizerCorpus(int seed = 0) =>
        string.Join("\n", SftCorpus(4000, seed).Select(e => e.Prompt + e.Completion));

    /// <summary>Writes the task's datasets as JSONL into <paramref name="directory"/>, the conversational ones of <see cref="ChatTask"/> too; returns the paths.</summary>
    public static IReadOnlyDictionary<string, string> WriteDatasets(string directory, int seed)
    {
        var paths = new Dictionary<string, string>
        {
            ["sft"] = Path.Combine(directory, "sft.jsonl"),
            ["prompts"] = Path.Combine(directory, "prompts.jsonl"),
            ["eval-prompts"] = Path.Combine(directory, "eval-prompts.jsonl"),
            ["preferences"] = Path.Combine(directory, "preferences.jsonl"),
            ["sums"] = Path.Combine(directory, "sums.jsonl"),
            ["eval-sums"] = Path.Combine(directory, "eval-sums.jsonl"),
            ["sums-sft"] = Path.Combine(directory, "sums-sft.jsonl"),
        };
        Jsonl.Write(paths["sft"], SftCorpus(2000, seed));
        Jsonl.Write(paths["prompts"], ReviewPrompts(512, seed + 1));
        Jsonl.Write(paths["eval-prompts"], ReviewPrompts(64, seed + 2));
        Jsonl.Write(paths["preferences"], Preferences(1000, seed + 3));
        Jsonl.Write(paths["sums"], SumPrompts(512, seed + 4));
        Jsonl.Write(paths["eval-sums"], SumPrompts(64, seed + 5));
        Jsonl.Write(paths["sums-sft"], WorkedSums(2000, seed + 6));
        foreach (var (name, path) in ChatTask.WriteDatasets(directory, seed)) paths[name] = path;
        return paths;
    }
}
