using System.Globalization;
using System.Text.Json;

namespace Rlft.Actors.Feedback.Http;

internal static partial class RequestParsing
{
    static readonly string[] ItemFields =
        ["id", "kind", "prompt", "messages", "completions", "raters", "timeoutSeconds", "fallback", "origin",
         "guideline", "verdicts", "strength", "rationale", "criteria"];

    /// <summary>
    /// <c>{"items": [{"kind", "prompt" | "messages", "completions": [{"id","text"}|"text"], "id"?, "raters"?,
    /// "timeoutSeconds"?, "fallback"?, "origin"?, "guideline"?, "verdicts"?, "strength"?, "rationale"?, "criteria"?}]}</c>.
    /// What an item leaves out comes from the node's settings (<paramref name="defaults"/>), fixed into the item when
    /// it is stored, so a later config change does not change what an item asked for.
    /// </summary>
    public static IReadOnlyList<FeedbackItem> ParseItems(JsonElement root, FeedbackOptions defaults)
    {
        var top = Fields(root, "body", ["items"]);
        var list = Required(top, "items", "body");
        if (list.ValueKind != JsonValueKind.Array) throw new BadRequest($"items: expected a list, got {Kind(list)}");
        if (list.GetArrayLength() is 0 or > 1000) throw new BadRequest("items: expected 1..1000 items");
        var items = new List<FeedbackItem>();
        int i = 0;
        foreach (var el in list.EnumerateArray()) items.Add(ParseItem(el, $"items[{i++}]", defaults));
        return items;
    }

    static FeedbackItem ParseItem(JsonElement el, string at, FeedbackOptions defaults)
    {
        var f = Fields(el, at, ItemFields);
        string kindText = Str(Required(f, "kind", at), $"{at}.kind");
        var kind = kindText switch
        {
            "compare" => FeedbackKind.Compare,
            "score" => FeedbackKind.Score,
            _ => throw new BadRequest($"{at}.kind: expected \"compare\" or \"score\", got \"{Shorten(kindText)}\""),
        };
        var messages = f.TryGetValue("messages", out var m) ? Messages(m, $"{at}.messages") : null;
        string prompt = f.TryGetValue("prompt", out var p) ? Str(p, $"{at}.prompt")
            : messages is not null ? "" : throw new BadRequest($"{at}.prompt: missing (give a prompt or messages)");
        bool compare = kind == FeedbackKind.Compare;
        var item = new FeedbackItem(
            f.TryGetValue("id", out var id) ? Id(id, $"{at}.id") : "item-" + Guid.NewGuid().ToString("N")[..16],
            kind,
            prompt,
            Completions(Required(f, "completions", at), $"{at}.completions"),
            f.TryGetValue("raters", out var r) ? Int(r, $"{at}.raters") : defaults.RatersPerItem,
            f.TryGetValue("timeoutSeconds", out var t) ? checked(Int(t, $"{at}.timeoutSeconds") * 1000L) : (long)defaults.ItemTimeout.TotalMilliseconds,
            f.TryGetValue("fallback", out var fb) ? Str(fb, $"{at}.fallback") : defaults.Fallback,
            f.TryGetValue("origin", out var o) ? Str(o, $"{at}.origin") : null)
        {
            Messages = messages,
            Guideline = f.TryGetValue("guideline", out var g) ? Id(g, $"{at}.guideline") : null,
            Verdicts = f.TryGetValue("verdicts", out var v) ? Names(v, $"{at}.verdicts") : compare ? defaults.Verdicts : [],
            AskStrength = f.TryGetValue("strength", out var s) ? Bool(s, $"{at}.strength") : compare && defaults.AskStrength,
            Rationale = f.TryGetValue("rationale", out var why)
                ? Enum.Parse<RationalePolicy>(OneOf(why, $"{at}.rationale", ["off", "optional", "required"]), ignoreCase: true)
                : defaults.Rationale,
            Criteria = f.TryGetValue("criteria", out var c) ? Names(c, $"{at}.criteria") : compare ? [] : defaults.Criteria,
        };
        if (item.Problem() is { } problem) throw new BadRequest($"{at}.{problem}");
        return item;
    }

    static List<Completion> Completions(JsonElement comps, string at)
    {
        if (comps.ValueKind != JsonValueKind.Array) throw new BadRequest($"{at}: expected a list, got {Kind(comps)}");
        var completions = new List<Completion>();
        int j = 0;
        foreach (var c in comps.EnumerateArray())
        {
            string cat = $"{at}[{j}]";
            string defaultId = ((char)('a' + j % 26)).ToString() + (j >= 26 ? (j / 26).ToString(CultureInfo.InvariantCulture) : "");
            j++;
            if (c.ValueKind == JsonValueKind.String) { completions.Add(new Completion(defaultId, c.GetString()!)); continue; }
            var cf = Fields(c, cat, ["id", "text"]);
            completions.Add(new Completion(cf.TryGetValue("id", out var cid) ? Id(cid, $"{cat}.id") : defaultId, Str(Required(cf, "text", cat), $"{cat}.text")));
        }
        return completions;
    }

    /// <summary>TRL's conversational format: a list of <c>{"role", "content"}</c>.</summary>
    static List<ChatMessage> Messages(JsonElement list, string at)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new BadRequest($"{at}: expected a list of {{\"role\", \"content\"}}, got {Kind(list)}");
        if (list.GetArrayLength() > FeedbackItem.MaxMessages) throw new BadRequest($"{at}: expected 1..{FeedbackItem.MaxMessages} messages");
        var messages = new List<ChatMessage>();
        int i = 0;
        foreach (var el in list.EnumerateArray())
        {
            string mat = $"{at}[{i++}]";
            var mf = Fields(el, mat, ["role", "content"]);
            messages.Add(new ChatMessage(OneOf(Required(mf, "role", mat), $"{mat}.role", ItemParts.Roles), Str(Required(mf, "content", mat), $"{mat}.content")));
        }
        return messages;
    }

    static List<string> Names(JsonElement list, string at)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new BadRequest($"{at}: expected a list of names, got {Kind(list)}");
        if (list.GetArrayLength() > 16) throw new BadRequest($"{at}: too many entries");
        return list.EnumerateArray().Select((e, i) => Str(e, $"{at}[{i}]")).ToList();
    }
}
