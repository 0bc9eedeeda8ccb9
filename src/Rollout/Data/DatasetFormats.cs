using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Chat;

namespace Rlft.Rollout.Data;

/// <summary>
/// TRL's dataset formats, conversational and plain, read and checked without any model:
/// <list type="bullet">
/// <item>SFT: <c>{"messages": [...]}</c>, <c>{"prompt": [...], "completion": [...]}</c>, <c>{"prompt": "…", "completion": "…"}</c>;</item>
/// <item>preferences: <c>{"prompt", "chosen", "rejected"}</c> as strings or message lists, or <c>chosen</c>/<c>rejected</c>
/// conversations whose shared leading messages are the prompt;</item>
/// <item>prompts: <c>{"prompt": "…"}</c> or <c>{"prompt": [...]}</c>, with an optional string <c>answer</c>.</item>
/// </list>
/// A message is <c>{"role": system|user|assistant|tool, "content": "…"}</c>. Other top-level keys are ignored. Every
/// problem is one line <c>file:line: field: problem</c>.
/// </summary>
public static class DatasetFormats
{
    /// <summary>
    /// Every problem of the file for a stage of <paramref name="kind"/>, one line each (<c>data.jsonl:3: messages[1].role:
    /// unknown role "narrator" (…)</c>), the first <paramref name="limit"/> of them and then how many more; empty when the
    /// file is good. What a job validator calls before anything loads.
    /// </summary>
    public static IReadOnlyList<string> Check(string path, DataKind kind, int limit = int.MaxValue) => Scan(path, kind, limit).Errors;

    /// <summary>
    /// <see cref="Check"/>, and whether any record is conversational (a list of messages somewhere): such a file needs
    /// a chat template.
    /// </summary>
    internal static (IReadOnlyList<string> Errors, bool Conversational) Scan(string path, DataKind kind, int limit = int.MaxValue)
    {
        var (records, errors) = Parse(path, kind);
        var shown = errors.Count > limit ? [.. errors.Take(limit), $"{path}: ... and {errors.Count - limit} more problems"] : errors;
        return (shown, records.Any(IsConversational));
    }

    /// <summary>True for a record whose prompt, completion or sides are messages (it is rendered by a chat template).</summary>
    internal static bool IsConversational(object record) => record is MessagesSftRecord or ChatSftRecord or ChatPreferenceRecord or ChatPromptRecord;

    /// <summary>The SFT examples of a file; the first problems are a <see cref="DatasetException"/>.</summary>
    public static List<SftRecord> ReadSft(string path) => Read<SftRecord>(path, DataKind.Sft);
    public static List<PreferenceRecord> ReadPreferences(string path) => Read<PreferenceRecord>(path, DataKind.Preferences);
    public static List<PromptRecord> ReadPrompts(string path) => Read<PromptRecord>(path, DataKind.Prompts);

    static List<T> Read<T>(string path, DataKind kind) => JsonlLines.OrThrow(Parse(path, kind)).Cast<T>().ToList();

    static (List<object> Records, List<string> Errors) Parse(string path, DataKind kind) => JsonlLines.Scan<object>(path, (o, line) => kind switch
    {
        DataKind.Sft => Sft(o, line),
        DataKind.Preferences => Preference(o, line),
        _ => Prompt(o, line),
    });

    static SftRecord? Sft(JsonObject o, LineCheck line)
    {
        if (o.ContainsKey("messages"))
        {
            foreach (var key in new[] { "prompt", "completion" })
                if (o.ContainsKey(key)) line.Fail(key, "not used together with \"messages\"");
            var messages = line.Messages(o, "messages");
            if (messages is null) return null;
            if (!messages.Any(m => m.Role == "assistant")) return line.Fail<SftRecord>("messages", "no assistant message to learn from");
            return new MessagesSftRecord(line.Where, messages);
        }
        if (!o.ContainsKey("prompt") && !o.ContainsKey("completion"))
            return line.Fail<SftRecord>("messages", "missing (an SFT line has \"messages\", or \"prompt\" and \"completion\")");
        if (o["prompt"] is JsonArray || o["completion"] is JsonArray)
        {
            var prompt = line.Messages(o, "prompt");
            var completion = line.Messages(o, "completion");
            if (prompt is null || completion is null) return null;
            if (!completion.Any(m => m.Role == "assistant")) return line.Fail<SftRecord>("completion", "no assistant message to learn from");
            return new ChatSftRecord(line.Where, prompt, completion);
        }
        string? p = line.String(o, "prompt"), c = line.String(o, "completion");
        return p is null || c is null ? null : new TextSftRecord(line.Where, p, c);
    }

    /// <summary>A preference line with its optional soft label and weight (the feedback export writes both).</summary>
    static PreferenceRecord? Preference(JsonObject o, LineCheck line)
    {
        var record = PreferencePair(o, line);
        double? target = line.OptionalNumber(o, "label", 0.5, 1, "P(chosen ≻ rejected) between 0.5 (a tie) and 1");
        double? weight = line.OptionalNumber(o, "weight", double.Epsilon, double.MaxValue, "a positive weight");
        if (record is null || line.Failed) return null;
        return record with { Target = target ?? 1, Weight = weight ?? 1 };
    }

    static PreferenceRecord? PreferencePair(JsonObject o, LineCheck line)
    {
        if (o["chosen"] is JsonArray || o["rejected"] is JsonArray || o["prompt"] is JsonArray)
        {
            var chosen = line.Messages(o, "chosen");
            var rejected = line.Messages(o, "rejected");
            var prompt = o.ContainsKey("prompt") ? line.Messages(o, "prompt") : [];
            if (chosen is null || rejected is null || prompt is null) return null;
            if (!o.ContainsKey("prompt")) (prompt, chosen, rejected) = ExtractPrompt(chosen, rejected);
            if (chosen.SequenceEqual(rejected)) return line.Fail<PreferenceRecord>("rejected", "the same conversation as chosen");
            if (!chosen.Any(m => m.Role == "assistant")) return line.Fail<PreferenceRecord>("chosen", "no assistant message after the prompt");
            if (!rejected.Any(m => m.Role == "assistant")) return line.Fail<PreferenceRecord>("rejected", "no assistant message after the prompt");
            return new ChatPreferenceRecord(line.Where, prompt, chosen, rejected);
        }
        string? p = line.String(o, "prompt"), ch = line.String(o, "chosen"), r = line.String(o, "rejected");
        return p is null || ch is null || r is null ? null : new TextPreferenceRecord(line.Where, p, ch, r);
    }

    /// <summary>TRL's implicit prompt (<c>extract_prompt</c>): the leading messages chosen and rejected share.</summary>
    static (IReadOnlyList<ChatMessage>, IReadOnlyList<ChatMessage>, IReadOnlyList<ChatMessage>) ExtractPrompt(IReadOnlyList<ChatMessage> chosen, IReadOnlyList<ChatMessage> rejected)
    {
        int shared = 0;
        while (shared < chosen.Count && shared < rejected.Count && chosen[shared] == rejected[shared]) shared++;
        if (shared == chosen.Count || shared == rejected.Count) shared = Math.Max(0, Math.Min(chosen.Count, rejected.Count) - 1);
        return (chosen.Take(shared).ToList(), chosen.Skip(shared).ToList(), rejected.Skip(shared).ToList());
    }

    static PromptRecord? Prompt(JsonObject o, LineCheck line)
    {
        // A null answer is no answer (as the plain format has always read it).
        string? answer = o["answer"] is null ? null : line.String(o, "answer");
        if (o["prompt"] is JsonArray)
        {
            var messages = line.Messages(o, "prompt");
            return messages is null ? null : new ChatPromptRecord(line.Where, messages, answer);
        }
        string? prompt = line.String(o, "prompt", orMessages: true);
        return prompt is null ? null : new TextPromptRecord(line.Where, prompt, answer);
    }
}
