using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Chat;

namespace Rlft.Rollout.Data;

/// <summary>The checks of one dataset line; each problem becomes <c>file:line: field: problem</c>.</summary>
sealed class LineCheck(string where, List<string> errors)
{
    static readonly string[] Roles = ["system", "user", "assistant", "tool"];

    public string Where { get; } = where;
    public bool Failed { get; private set; }

    public void Fail(string field, string problem)
    {
        errors.Add($"{Where}: {field}: {problem}");
        Failed = true;
    }

    public T? Fail<T>(string field, string problem) where T : class
    {
        Fail(field, problem);
        return null;
    }

    static string Kind(JsonNode? n) => n switch
    {
        null => "null",
        JsonArray => "a list",
        JsonObject => "an object",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        },
        _ => "something else",
    };

    /// <summary>An optional number field in [<paramref name="min"/>, <paramref name="max"/>]; null when absent (or refused).</summary>
    public double? OptionalNumber(JsonObject o, string field, double min, double max, string what)
    {
        if (!o.TryGetPropertyValue(field, out var node)) return null;
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number)
        {
            Fail(field, $"expected a number ({what}), got {Kind(node)}");
            return null;
        }
        double d = v.GetValue<double>();
        if (double.IsFinite(d) && d >= min && d <= max) return d;
        Fail(field, $"{d.ToString(System.Globalization.CultureInfo.InvariantCulture)} is not {what}");
        return null;
    }

    /// <summary>A required string field.</summary>
    public string? String(JsonObject o, string field, bool orMessages = false)
    {
        if (!o.TryGetPropertyValue(field, out var node)) return Fail<string>(field, "missing");
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        return Fail<string>(field, $"expected a string{(orMessages ? " or a list of messages" : "")}, got {Kind(node)}");
    }

    /// <summary>A required non-empty list of <c>{"role", "content"}</c> messages with known roles and string contents.</summary>
    public IReadOnlyList<ChatMessage>? Messages(JsonObject o, string field)
    {
        if (!o.TryGetPropertyValue(field, out var node)) return Fail<IReadOnlyList<ChatMessage>>(field, "missing");
        if (node is not JsonArray list) return Fail<IReadOnlyList<ChatMessage>>(field, $"expected a list of messages, got {Kind(node)}");
        if (list.Count == 0) return Fail<IReadOnlyList<ChatMessage>>(field, "empty list");
        var messages = new List<ChatMessage>(list.Count);
        bool ok = true;
        for (int i = 0; i < list.Count; i++)
        {
            string at = $"{field}[{i}]";
            if (list[i] is not JsonObject m) { Fail(at, $"expected a message object, got {Kind(list[i])}"); ok = false; continue; }
            string? role = null, content = null;
            if (!m.TryGetPropertyValue("role", out var r)) Fail($"{at}.role", "missing");
            else if (r is not JsonValue rv || rv.GetValueKind() != JsonValueKind.String) Fail($"{at}.role", $"expected a string, got {Kind(r)}");
            else if (!Roles.Contains(role = rv.GetValue<string>())) { Fail($"{at}.role", $"unknown role \"{role}\" (expected system, user, assistant or tool)"); role = null; }
            if (!m.TryGetPropertyValue("content", out var c)) Fail($"{at}.content", "missing");
            else if (c is not JsonValue cv || cv.GetValueKind() != JsonValueKind.String) Fail($"{at}.content", $"expected a string, got {Kind(c)}");
            else content = cv.GetValue<string>();
            foreach (var key in m.Select(kv => kv.Key).Where(k => k is not ("role" or "content")))
                Fail($"{at}.{key}", "not supported (a message has \"role\" and \"content\")");
            if (role is null || content is null || m.Count > 2) { ok = false; continue; }
            messages.Add(new ChatMessage(role, content));
        }
        return ok ? messages : null;
    }
}
