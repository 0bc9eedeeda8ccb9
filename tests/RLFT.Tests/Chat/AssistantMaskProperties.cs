using System.Text;
using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Policy.Chat;
using Rlft.Policy.Tokenization;

namespace Rlft.Tests.Chat;

/// <summary>
/// A prefix-stable template built from choices real templates make: a BOS or not, the turn header
/// (ChatML, "User: ", a header closed by a special token, "### user:"), trimmed content or not, the end of turn
/// (a special token, a newline or nothing), the separator after it, and a default system turn.
/// </summary>
public sealed record TemplateStyle(bool Bos, int Header, bool Trim, int Eot, bool Separator, bool DefaultSystem)
{
    static readonly (string Prefix, bool Capitalize, string Suffix)[] Headers =
        [("<|im_start|>", false, "\n"), ("", true, ": "), ("<|im_start|>", false, "<|pad|>\n\n"), ("### ", false, ":\n")];
    static readonly string[] Eots = ["<|im_end|>", "\n", ""];

    public string EotText => Eots[Eot];
    public bool SpecialEot => Eot == 0;
    string Sep => Separator ? "\n" : "";

    static string Lit(string s) => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'").Replace("\n", "\\n") + "'";

    string HeaderJinja(string role) => $"{{{{ {Lit(Headers[Header].Prefix)} }}}}{{{{ {role}{(Headers[Header].Capitalize ? " | capitalize" : "")} }}}}{{{{ {Lit(Headers[Header].Suffix)} }}}}";

    public string Jinja() =>
        (Bos ? "{{ bos_token }}" : "") +
        "{% for m in messages %}" +
        (DefaultSystem ? $"{{% if loop.first and m.role != 'system' %}}{HeaderJinja("'system'")}Default system prompt.{{{{ {Lit(EotText + Sep)} }}}}{{% endif %}}" : "") +
        HeaderJinja("m.role") + (Trim ? "{{ m.content | trim }}" : "{{ m.content }}") + $"{{{{ {Lit(EotText + Sep)} }}}}" +
        "{% endfor %}" +
        $"{{% if add_generation_prompt %}}{HeaderJinja("'assistant'")}{{% endif %}}";

    /// <summary>The same rendering in C#, with the character range of every content (role, start, end).</summary>
    public (string Text, List<(string Role, int Start, int End)> Contents) Render(IReadOnlyList<ChatMessage> messages)
    {
        var sb = new StringBuilder(Bos ? "<|endoftext|>" : "");
        var contents = new List<(string, int, int)>();
        void Turn(string role, string content)
        {
            var (prefix, cap, suffix) = Headers[Header];
            sb.Append(prefix).Append(cap ? char.ToUpperInvariant(role[0]) + role[1..] : role).Append(suffix);
            int start = sb.Length;
            sb.Append(Trim ? content.Trim() : content);
            contents.Add((role, start, sb.Length));
            sb.Append(EotText).Append(Sep);
        }
        for (int i = 0; i < messages.Count; i++)
        {
            if (i == 0 && DefaultSystem && messages[0].Role != "system") Turn("system", "Default system prompt.");
            Turn(messages[i].Role, messages[i].Content);
        }
        return (sb.ToString(), contents);
    }

    public override string ToString() => $"TemplateStyle(bos={Bos}, header={Header}, trim={Trim}, eot={EotText.Replace("\n", "\\n")}, sep={Separator}, defaultSystem={DefaultSystem})";
}

/// <summary>A conversation: an optional system message, a user turn, then users and assistants in any order (at least one assistant).</summary>
public sealed record Conversation(ChatMessage[] Messages)
{
    public override string ToString() => string.Join(" | ", Messages.Select(m => $"{m.Role}:{System.Text.Json.JsonSerializer.Serialize(m.Content)}"));
}

public static class ChatArbitraries
{
    static readonly Gen<string> Piece = Gen.Elements("Hello", " world", "42", " ", "  ", "\n", "é", "😀", "?", "!", ", ", "abc", "<|im_end|>", "\t", "Zz", "ünï", "12 345");

    static readonly Gen<string> Content = Gen.Choose(0, 6).SelectMany(n => Gen.ArrayOf(Piece, n)).Select(string.Concat);

    public static Arbitrary<TemplateStyle> TemplateStyle() => Arb.From(
        from bos in Gen.Elements(true, false)
        from header in Gen.Choose(0, 3)
        from trim in Gen.Elements(true, false)
        from eot in Gen.Choose(0, 2)
        from sep in Gen.Elements(true, false)
        from system in Gen.Elements(true, false)
        select new TemplateStyle(bos, header, trim, eot, sep, system));

    public static Arbitrary<Conversation> Conversation() => Arb.From(
        from system in Gen.Elements(true, false)
        from n in Gen.Choose(1, 5)
        from roles in Gen.ArrayOf(Gen.Elements("user", "assistant"), n)
        from contents in Gen.ArrayOf(Content, n + 2)
        let turns = (string[])["user", .. roles.Contains("assistant") ? roles : [.. roles, "assistant"]]
        select new Conversation([
            .. system ? new[] { new ChatMessage("system", contents[^1]) } : [],
            .. turns.Select((r, i) => new ChatMessage(r, contents[i % contents.Length])),
        ]));
}

/// <summary>
/// For random conversations and random prefix-stable templates the assistant spans are disjoint and in order,
/// the loss never covers a byte of user or system content, and with a special end-of-turn token it covers every
/// byte of assistant content.
/// </summary>
[Properties(Arbitrary = [typeof(ChatArbitraries)], MaxTest = 150)]
public class AssistantMaskProperties
{
    static readonly Lazy<HfTokenizer> Tok = new(() => HfTokenizer.Load(TestTokenizers.ByteLevelChatMl()));

    /// <summary>The UTF-8 bytes each token stands for: special tokens their text, the others GPT-2's byte alphabet.</summary>
    static readonly Lazy<Dictionary<int, int>> TokenBytes = new(() =>
    {
        var inverse = ByteLevel.ByteToChar.Select((c, b) => (c, b)).ToDictionary(x => x.c, x => (byte)x.b);
        var json = TestTokenizers.ByteLevelJsonObject;
        var sizes = ((JsonObject)json["model"]!["vocab"]!).ToDictionary(kv => kv.Value!.GetValue<int>(), kv => kv.Key.Count(c => inverse.ContainsKey(c)));
        foreach (var (content, id) in Tok.Value.SpecialTokens) sizes[id] = Encoding.UTF8.GetByteCount(content);
        return sizes;
    });

    [Property]
    public bool Assistant_masks_are_disjoint_ordered_and_stay_off_user_and_system_content(TemplateStyle style, Conversation conversation)
    {
        var template = ChatTemplate.FromSource(style.Jinja(), new Dictionary<string, object?> { ["bos_token"] = "<|endoftext|>", ["eos_token"] = "<|endoftext|>" });
        var encoder = new ExampleEncoder(Tok.Value, template);
        var messages = conversation.Messages;
        var (text, contents) = style.Render(messages);
        var (rendered, spans) = AssistantSpans.Find(template, messages, 0, encoder.EndTexts);
        if (rendered != text) throw new InvalidOperationException($"template renders {rendered} but the style says {text}");
        for (int i = 0; i < spans.Count; i++)
        {
            if (spans[i].Start > spans[i].End) return false;
            if (i > 0 && spans[i - 1].End > spans[i].Start) return false;
        }
        if (spans.Count != messages.Count(m => m.Role == "assistant")) return false;

        var example = encoder.Conversation(messages);
        // Byte ranges of the tokens of the rendered text (an appended EOS stands for no text).
        var bytes = Encoding.UTF8.GetBytes(text);
        long ByteOf(int charPos) => Encoding.UTF8.GetByteCount(text.AsSpan(0, charPos));
        var starts = new long[example.Ids.Length + 1];
        for (int i = 0; i < example.Ids.Length; i++) starts[i + 1] = starts[i] + (starts[i] < bytes.Length ? TokenBytes.Value[example.Ids[i]] : 0);
        if (starts[^1] != bytes.Length) throw new InvalidOperationException("token bytes do not add up to the text");

        foreach (var (role, start, end) in contents)
        {
            long from = ByteOf(start), to = ByteOf(end);
            for (int t = 0; t < example.Ids.Length; t++)
            {
                bool overlaps = starts[t] < to && from < starts[t + 1];
                if (role != "assistant" && overlaps && example.LossMask[t]) return false;                              // user/system byte learned
                if (role == "assistant" && style.SpecialEot && overlaps && !example.LossMask[t]) return false;         // assistant byte not learned
            }
        }
        return true;
    }
}
