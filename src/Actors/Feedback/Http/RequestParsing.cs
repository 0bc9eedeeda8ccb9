using System.Text.Json;

namespace Rlft.Actors.Feedback.Http;

/// <summary>A request body that cannot be used; the message names the field and what is wrong.</summary>
public sealed class BadRequest(string message) : Exception(message);

/// <summary>
/// Strict, hand-written parsing of the two request bodies: wrong types, unknown or repeated fields and
/// out-of-range values are refused with a message naming the field, before anything reaches the actor.
/// </summary>
public static class RequestParsing
{
    public static SubmitRating ParseRating(JsonElement root, string rater)
    {
        var fields = Fields(root, "body", ["taskId", "choice", "scores"]);
        string taskId = Id(Required(fields, "taskId", "body"), "taskId");
        bool hasChoice = fields.TryGetValue("choice", out var choiceEl);
        bool hasScores = fields.TryGetValue("scores", out var scoresEl);
        if (hasChoice == hasScores) throw new BadRequest("body: give exactly one of \"choice\" (compare) or \"scores\" (score)");
        if (hasChoice) return new SubmitRating(rater, taskId, Id(choiceEl, "choice"), null);
        if (scoresEl.ValueKind != JsonValueKind.Object) throw new BadRequest($"scores: expected an object of completion id to 1..7, got {Kind(scoresEl)}");
        var scores = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in scoresEl.EnumerateObject())
        {
            if (!FeedbackItem.IsValidId(p.Name)) throw new BadRequest("scores: keys must be completion ids (1-128 characters of A-Z a-z 0-9 . _ : -)");
            if (scores.ContainsKey(p.Name)) throw new BadRequest($"scores.{p.Name}: appears twice");
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int v))
                throw new BadRequest($"scores.{p.Name}: expected an integer 1..7, got {Kind(p.Value)}");
            if (v is < 1 or > 7) throw new BadRequest($"scores.{p.Name}: {v} is outside 1..7");
            scores[p.Name] = v;
        }
        if (scores.Count == 0) throw new BadRequest("scores: empty");
        return new SubmitRating(rater, taskId, null, scores);
    }

    /// <summary><c>{"items": [{"kind", "prompt", "completions": [{"id","text"}|"text"], "id"?, "raters"?, "timeoutSeconds"?, "fallback"?, "origin"?}]}</c></summary>
    public static IReadOnlyList<FeedbackItem> ParseItems(JsonElement root, FeedbackOptions defaults)
    {
        var top = Fields(root, "body", ["items"]);
        var list = Required(top, "items", "body");
        if (list.ValueKind != JsonValueKind.Array) throw new BadRequest($"items: expected a list, got {Kind(list)}");
        if (list.GetArrayLength() is 0 or > 1000) throw new BadRequest("items: expected 1..1000 items");
        var items = new List<FeedbackItem>();
        int i = 0;
        foreach (var el in list.EnumerateArray())
        {
            string at = $"items[{i++}]";
            var f = Fields(el, at, ["id", "kind", "prompt", "completions", "raters", "timeoutSeconds", "fallback", "origin"]);
            string kindText = Str(Required(f, "kind", at), $"{at}.kind");
            var kind = kindText switch
            {
                "compare" => FeedbackKind.Compare,
                "score" => FeedbackKind.Score,
                _ => throw new BadRequest($"{at}.kind: expected \"compare\" or \"score\", got \"{kindText}\""),
            };
            var comps = Required(f, "completions", at);
            if (comps.ValueKind != JsonValueKind.Array) throw new BadRequest($"{at}.completions: expected a list, got {Kind(comps)}");
            var completions = new List<Completion>();
            int j = 0;
            foreach (var c in comps.EnumerateArray())
            {
                string cat = $"{at}.completions[{j}]";
                string defaultId = ((char)('a' + j % 26)).ToString() + (j >= 26 ? (j / 26).ToString(System.Globalization.CultureInfo.InvariantCulture) : "");
                j++;
                if (c.ValueKind == JsonValueKind.String) { completions.Add(new Completion(defaultId, c.GetString()!)); continue; }
                var cf = Fields(c, cat, ["id", "text"]);
                completions.Add(new Completion(cf.TryGetValue("id", out var cid) ? Id(cid, $"{cat}.id") : defaultId, Str(Required(cf, "text", cat), $"{cat}.text")));
            }
            var item = new FeedbackItem(
                f.TryGetValue("id", out var id) ? Id(id, $"{at}.id") : "item-" + Guid.NewGuid().ToString("N")[..16],
                kind,
                Str(Required(f, "prompt", at), $"{at}.prompt"),
                completions,
                f.TryGetValue("raters", out var r) ? Int(r, $"{at}.raters") : defaults.RatersPerItem,
                f.TryGetValue("timeoutSeconds", out var t) ? checked(Int(t, $"{at}.timeoutSeconds") * 1000L) : (long)defaults.ItemTimeout.TotalMilliseconds,
                f.TryGetValue("fallback", out var fb) ? Str(fb, $"{at}.fallback") : defaults.Fallback,
                f.TryGetValue("origin", out var o) ? Str(o, $"{at}.origin") : null);
            if (item.Problem() is { } problem) throw new BadRequest($"{at}.{problem}");
            items.Add(item);
        }
        return items;
    }

    static Dictionary<string, JsonElement> Fields(JsonElement el, string at, string[] allowed)
    {
        if (el.ValueKind != JsonValueKind.Object) throw new BadRequest($"{at}: expected a JSON object, got {Kind(el)}");
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in el.EnumerateObject())
        {
            string where = at == "body" ? p.Name : $"{at}.{p.Name}";
            if (p.Name == "rater") throw new BadRequest($"{where}: not accepted; the rater is the owner of the bearer token");
            if (!allowed.Contains(p.Name)) throw new BadRequest($"{where}: unknown field (expected {string.Join(", ", allowed)})");
            if (!fields.TryAdd(p.Name, p.Value)) throw new BadRequest($"{where}: appears twice");
        }
        return fields;
    }

    static JsonElement Required(Dictionary<string, JsonElement> fields, string name, string at) =>
        fields.TryGetValue(name, out var v) ? v : throw new BadRequest($"{(at == "body" ? "" : at + ".")}{name}: missing");

    static string Str(JsonElement el, string at) =>
        el.ValueKind == JsonValueKind.String ? el.GetString()! : throw new BadRequest($"{at}: expected a string, got {Kind(el)}");

    static string Id(JsonElement el, string at)
    {
        string s = Str(el, at);
        return FeedbackItem.IsValidId(s) ? s : throw new BadRequest($"{at}: expected an id of 1-128 characters of A-Z a-z 0-9 . _ : -");
    }

    static int Int(JsonElement el, string at) =>
        el.ValueKind == JsonValueKind.Number && el.TryGetInt32(out int v) ? v : throw new BadRequest($"{at}: expected an integer, got {Kind(el)}");

    static string Kind(JsonElement el) => el.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {el.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
