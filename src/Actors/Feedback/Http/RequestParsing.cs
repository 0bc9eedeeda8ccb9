using System.Text.Json;

namespace Rlft.Actors.Feedback.Http;

/// <summary>A request body that cannot be used; the message names the field and what is wrong.</summary>
internal sealed class BadRequest(string message) : Exception(message);

/// <summary>
/// Strict, hand-written parsing of the request bodies: wrong types, unknown or repeated fields and
/// out-of-range values are refused with a message naming the field, before anything reaches the actor.
/// Items are parsed in ItemParsing.cs, the workflow's small bodies in WorkflowParsing.cs.
/// </summary>
internal static partial class RequestParsing
{
    /// <summary>
    /// <c>{"taskId", "choice" | "verdict" | "scores", "strength"?, "rationale"?}</c>: scores are
    /// <c>{completion id: 1..7}</c>, or <c>{completion id: {criterion: 1..7}}</c> for an item with criteria.
    /// </summary>
    public static SubmitRating ParseRating(JsonElement root, string rater)
    {
        var fields = Fields(root, "body", ["taskId", "choice", "verdict", "scores", "strength", "rationale"]);
        string taskId = Id(Required(fields, "taskId", "body"), "taskId");
        int answers = new[] { "choice", "verdict", "scores" }.Count(fields.ContainsKey);
        if (answers != 1)
            throw new BadRequest("body: give exactly one of \"choice\" (compare: a completion id), \"verdict\" (compare: tie or both-bad) or \"scores\" (score)");
        string? strength = fields.TryGetValue("strength", out var st) ? OneOf(st, "strength", ItemParts.Strengths) : null;
        string? rationale = fields.TryGetValue("rationale", out var why) ? Rationale(why, "rationale") : null;
        if (fields.TryGetValue("choice", out var choice))
            return new SubmitRating(rater, taskId, Id(choice, "choice"), null) { Strength = strength, Rationale = rationale };
        if (fields.TryGetValue("verdict", out var verdict))
            return new SubmitRating(rater, taskId, null, null) { Verdict = OneOf(verdict, "verdict", ItemParts.AllVerdicts), Strength = strength, Rationale = rationale };
        var scoresEl = fields["scores"];
        if (scoresEl.ValueKind != JsonValueKind.Object) throw new BadRequest($"scores: expected an object of completion id to 1..7, got {Kind(scoresEl)}");
        var scores = new Dictionary<string, int>(StringComparer.Ordinal);
        var criteria = new Dictionary<string, IReadOnlyDictionary<string, int>>(StringComparer.Ordinal);
        foreach (var p in scoresEl.EnumerateObject())
        {
            if (!FeedbackItem.IsValidId(p.Name)) throw new BadRequest("scores: keys must be completion ids (1-128 characters of A-Z a-z 0-9 . _ : -)");
            if (scores.ContainsKey(p.Name) || criteria.ContainsKey(p.Name)) throw new BadRequest($"scores.{p.Name}: appears twice");
            if (p.Value.ValueKind == JsonValueKind.Object)
            {
                if (scores.Count > 0) throw new BadRequest($"scores.{p.Name}: expected an integer 1..7 like the scores before it, got an object");
                var byCriterion = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var c in p.Value.EnumerateObject())
                {
                    string at = $"scores.{p.Name}.{c.Name}";
                    if (!FeedbackItem.IsValidId(c.Name)) throw new BadRequest($"scores.{p.Name}: keys must be criterion names (1-128 characters of A-Z a-z 0-9 . _ : -)");
                    if (!byCriterion.TryAdd(c.Name, Score(c.Value, at))) throw new BadRequest($"{at}: appears twice");
                }
                if (byCriterion.Count == 0) throw new BadRequest($"scores.{p.Name}: empty");
                criteria[p.Name] = byCriterion;
            }
            else
            {
                if (criteria.Count > 0) throw new BadRequest($"scores.{p.Name}: expected an object of criterion to 1..7 like the scores before it, got {Kind(p.Value)}");
                scores[p.Name] = Score(p.Value, $"scores.{p.Name}");
            }
        }
        if (scores.Count == 0 && criteria.Count == 0) throw new BadRequest("scores: empty");
        return new SubmitRating(rater, taskId, null, scores.Count > 0 ? scores : null)
        {
            Criteria = criteria.Count > 0 ? criteria : null,
            Strength = strength,
            Rationale = rationale,
        };
    }

    static int Score(JsonElement el, string at)
    {
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt32(out int v)) throw new BadRequest($"{at}: expected an integer 1..7, got {Kind(el)}");
        return v is < 1 or > 7 ? throw new BadRequest($"{at}: {v} is outside 1..7") : v;
    }

    /// <summary>Free text up to the rationale limit; blank is the same as absent.</summary>
    internal static string? Rationale(JsonElement el, string at)
    {
        string s = Str(el, at);
        if (s.Length > ItemParts.MaxRationaleLength) throw new BadRequest($"{at}: longer than {ItemParts.MaxRationaleLength} characters");
        return string.IsNullOrWhiteSpace(s) ? null : s;
    }

    internal static string OneOf(JsonElement el, string at, IReadOnlyList<string> allowed)
    {
        string s = Str(el, at);
        return allowed.Contains(s) ? s : throw new BadRequest($"{at}: expected {string.Join(" or ", allowed)}, got \"{Shorten(s)}\"");
    }

    internal static Dictionary<string, JsonElement> Fields(JsonElement el, string at, string[] allowed)
    {
        if (el.ValueKind != JsonValueKind.Object) throw new BadRequest($"{at}: expected a JSON object, got {Kind(el)}");
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in el.EnumerateObject())
        {
            string where = at == "body" ? p.Name : $"{at}.{p.Name}";
            if (p.Name == "rater") throw new BadRequest($"{where}: not accepted; the rater is the owner of the bearer token");
            if (!allowed.Contains(p.Name))
                throw new BadRequest($"{where}: unknown field ({(allowed.Length == 0 ? "this call takes no fields" : "expected " + string.Join(", ", allowed))})");
            if (!fields.TryAdd(p.Name, p.Value)) throw new BadRequest($"{where}: appears twice");
        }
        return fields;
    }

    internal static JsonElement Required(Dictionary<string, JsonElement> fields, string name, string at) =>
        fields.TryGetValue(name, out var v) ? v : throw new BadRequest($"{(at == "body" ? "" : at + ".")}{name}: missing");

    internal static string Str(JsonElement el, string at) =>
        el.ValueKind == JsonValueKind.String ? el.GetString()! : throw new BadRequest($"{at}: expected a string, got {Kind(el)}");

    internal static string Id(JsonElement el, string at)
    {
        string s = Str(el, at);
        return FeedbackItem.IsValidId(s) ? s : throw new BadRequest($"{at}: expected an id of 1-128 characters of A-Z a-z 0-9 . _ : -");
    }

    internal static int Int(JsonElement el, string at) =>
        el.ValueKind == JsonValueKind.Number && el.TryGetInt32(out int v) ? v : throw new BadRequest($"{at}: expected an integer, got {Kind(el)}");

    internal static bool Bool(JsonElement el, string at) =>
        el.ValueKind is JsonValueKind.True or JsonValueKind.False ? el.GetBoolean() : throw new BadRequest($"{at}: expected true or false, got {Kind(el)}");

    internal static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "…";

    internal static string Kind(JsonElement el) => el.ValueKind switch
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
