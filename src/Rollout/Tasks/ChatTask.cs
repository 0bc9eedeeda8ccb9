using System.Globalization;
using System.Text.Json.Nodes;
using Rlft.Policy.Chat;
using Rlft.Rollout.Data;

namespace Rlft.Rollout.Tasks;

/// <summary>
/// The built-in task as conversations, in TRL's conversational formats: the same reviews and sums as
/// <see cref="ReviewTask"/> (same reward), asked by the user and answered by the assistant, some with a system
/// message and some over two exchanges, so that chat templates, assistant-only loss masks and prompts rendered
/// with the generation prompt all have something to do.
/// <list type="bullet">
/// <item><c>chat-sft</c>: <c>{"messages": [...]}</c>, reviews of random sentiment and correct sums;</item>
/// <item><c>chat-preferences</c>: <c>{"prompt": [...], "chosen": [...], "rejected": [...]}</c>, the chosen review scoring higher;</item>
/// <item><c>chat-prompts</c>, <c>chat-eval-prompts</c>: <c>{"prompt": [...]}</c> review requests for the online stages.</item>
/// </list>
/// </summary>
internal static class ChatTask
{
    public const string System = "You answer in one short sentence.";

    /// <summary>The task's datasets of this kind, by their builtin: names.</summary>
    public static readonly string[] Names = ["chat-sft", "chat-preferences", "chat-prompts", "chat-eval-prompts"];

    static ChatMessage User(string content) => new("user", content);
    static ChatMessage Assistant(string content) => new("assistant", content);

    /// <summary>A request and its answer: a review of random sentiment, or a correct sum.</summary>
    static (ChatMessage Ask, ChatMessage Answer) Exchange(Random rng, double sumFraction)
    {
        if (rng.NextDouble() < sumFraction)
        {
            int a = rng.Next(10), b = rng.Next(10);
            return (User(ReviewTask.SumPrompt(a, b)), Assistant((a + b).ToString(CultureInfo.InvariantCulture) + "."));
        }
        string item = ReviewTask.Items[rng.Next(ReviewTask.Items.Length)];
        return (User(ReviewTask.ReviewPrompt(item)), Assistant(ReviewTask.Review(rng, item, 0.5).TrimStart()));
    }

    /// <summary>
    /// SFT conversations: one or (a quarter of them) two exchanges, a system message on a third; reviews of random
    /// sentiment (so that preference training has room) and correct sums, 30% sums.
    /// </summary>
    public static List<IReadOnlyList<ChatMessage>> SftConversations(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<IReadOnlyList<ChatMessage>>(count);
        for (int i = 0; i < count; i++)
        {
            var messages = new List<ChatMessage>();
            if (rng.NextDouble() < 1.0 / 3) messages.Add(new ChatMessage("system", System));
            int turns = rng.NextDouble() < 0.25 ? 2 : 1;
            for (int t = 0; t < turns; t++)
            {
                var (ask, answer) = Exchange(rng, 0.3);
                messages.Add(ask);
                messages.Add(answer);
            }
            list.Add(messages);
        }
        return list;
    }

    /// <summary>A review request, with a system message on a third of them.</summary>
    static List<ChatMessage> ReviewRequest(Random rng, string item) =>
        rng.NextDouble() < 1.0 / 3 ? [new("system", System), User(ReviewTask.ReviewPrompt(item))] : [User(ReviewTask.ReviewPrompt(item))];

    /// <summary>Preference pairs whose chosen reply scores strictly higher under <see cref="ReviewTask.Score"/>.</summary>
    public static List<(IReadOnlyList<ChatMessage> Prompt, string Chosen, string Rejected)> Preferences(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<(IReadOnlyList<ChatMessage>, string, string)>(count);
        while (list.Count < count)
        {
            string item = ReviewTask.Items[rng.Next(ReviewTask.Items.Length)];
            var prompt = ReviewRequest(rng, item);
            string x = ReviewTask.Review(rng, item, 0.5).TrimStart(), y = ReviewTask.Review(rng, item, 0.5).TrimStart();
            double sx = ReviewTask.Score(ReviewTask.ReviewPrompt(item), x), sy = ReviewTask.Score(ReviewTask.ReviewPrompt(item), y);
            if (sx == sy) continue;
            list.Add(sx > sy ? (prompt, x, y) : (prompt, y, x));
        }
        return list;
    }

    /// <summary>Review requests for the online stages; held-out sets use another seed.</summary>
    public static List<IReadOnlyList<ChatMessage>> Prompts(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (IReadOnlyList<ChatMessage>)ReviewRequest(rng, ReviewTask.Items[rng.Next(ReviewTask.Items.Length)])).ToList();
    }

    static JsonArray Json(IEnumerable<ChatMessage> messages) => new(messages.Select(m => (JsonNode)m.ToJson()).ToArray());

    /// <summary>Writes the conversational datasets as JSONL into <paramref name="directory"/>; returns the paths by name.</summary>
    public static IReadOnlyDictionary<string, string> WriteDatasets(string directory, int seed)
    {
        var paths = Names.ToDictionary(n => n, n => Path.Combine(directory, n + ".jsonl"));
        Jsonl.Write(paths["chat-sft"], SftConversations(2000, seed + 7).Select(m => new JsonObject { ["messages"] = Json(m) }));
        Jsonl.Write(paths["chat-preferences"], Preferences(1000, seed + 8).Select(p => new JsonObject
        {
            ["prompt"] = Json(p.Prompt), ["chosen"] = Json([Assistant(p.Chosen)]), ["rejected"] = Json([Assistant(p.Rejected)]),
        }));
        Jsonl.Write(paths["chat-prompts"], Prompts(512, seed + 9).Select(p => new JsonObject { ["prompt"] = Json(p) }));
        Jsonl.Write(paths["chat-eval-prompts"], Prompts(64, seed + 10).Select(p => new JsonObject { ["prompt"] = Json(p) }));
        return paths;
    }
}
