using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Chat.Jinja;
using Rlft.Policy.Tokenization;

namespace Rlft.Policy.Chat;

/// <summary>The tokens a model ends a turn or a sequence with: what generation stops on and what closes an assistant span.</summary>
internal static class EndTokens
{
    const string Probe = "RLFT-probe-7f3a";

    /// <summary>
    /// The special token a template writes right after an assistant message's content (<c>&lt;|im_end|&gt;</c>,
    /// <c>&lt;|eot_id|&gt;</c>, <c>&lt;end_of_turn&gt;</c>, <c>&lt;/s&gt;</c>…), found by rendering a probe conversation;
    /// null when the template writes none or cannot render one.
    /// </summary>
    public static string? EndOfTurn(ChatTemplate template, ITokenizer tokenizer)
    {
        ChatMessage[][] probes =
        [
            [new("user", "Hi"), new("assistant", Probe)],
            [new("system", "S"), new("user", "Hi"), new("assistant", Probe)],
        ];
        foreach (var messages in probes)
        {
            string text;
            try { text = template.Render(messages, addGenerationPrompt: false); }
            catch (JinjaException) { continue; }
            int at = text.LastIndexOf(Probe, StringComparison.Ordinal);
            if (at < 0) continue;
            string after = text[(at + Probe.Length)..];
            return tokenizer.SpecialTokens.Keys.Where(k => k.Length > 0 && after.StartsWith(k, StringComparison.Ordinal)).MaxBy(k => k.Length);
        }
        return null;
    }

    /// <summary>
    /// The ids generation stops on: <c>generation_config.json</c>'s <c>eos_token_id</c> (one id or a list), <c>config.json</c>'s,
    /// the tokenizer's EOS, and the chat template's end-of-turn token; sorted, without repeats.
    /// </summary>
    public static int[] ForModel(string modelDir, ITokenizer tokenizer, ChatTemplate? template = null)
    {
        var ids = new SortedSet<int> { tokenizer.EosId };
        foreach (var file in new[] { "generation_config.json", "config.json" })
            foreach (int id in EosIds(Path.Combine(modelDir, file))) ids.Add(id);
        if (template is not null && EndOfTurn(template, tokenizer) is { } eot) ids.Add(tokenizer.SpecialTokens[eot]);
        return [.. ids];
    }

    static IEnumerable<int> EosIds(string path)
    {
        if (!File.Exists(path)) return [];
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path))?["eos_token_id"]; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON ({e.Message})", e); }
        return node switch
        {
            null => [],
            JsonValue v when v.TryGetValue<int>(out int id) => [id],
            JsonArray a => a.Select(x => x is JsonValue xv && xv.TryGetValue<int>(out int i) ? i : throw new InvalidDataException($"{path}: eos_token_id must hold integers")).ToList(),
            _ => throw new InvalidDataException($"{path}: eos_token_id must be an integer or a list of integers"),
        };
    }
}
