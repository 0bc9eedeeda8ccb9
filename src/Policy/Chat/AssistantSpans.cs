using Rlft.Policy.Chat.Jinja;

namespace Rlft.Policy.Chat;

/// <summary>
/// Where the assistant turns are in a rendered conversation, as character spans of the text, found without
/// <c>{% generation %}</c> markers: for assistant message i, the text of messages[..i] rendered with the generation
/// prompt ends where its content starts, and messages[..i+1] rendered without it ends where its turn ends. Both must
/// be prefixes of the whole conversation ("prefix-stable"); a template that renders earlier turns differently once
/// later ones exist (Qwen3 drops reasoning from old turns, Llama-3.0 always appends a generation header) is refused,
/// never guessed. Each span covers the content and the end-of-turn token closing it (<c>&lt;|im_end|&gt;</c>,
/// <c>&lt;|eot_id|&gt;</c>), not the whitespace the template writes after it, and nothing of other turns. A template
/// with <c>{% generation %}</c> blocks gives its spans directly.
/// </summary>
internal static class AssistantSpans
{
    /// <summary>
    /// The full text of <paramref name="messages"/> (no generation prompt) and the spans of the assistant messages
    /// with index ≥ <paramref name="from"/>. <paramref name="endTokens"/> are the end-of-turn/EOS strings that close a turn.
    /// </summary>
    public static (string Text, List<(int Start, int End)> Spans) Find(
        ChatTemplate template, IReadOnlyList<ChatMessage> messages, int from, IReadOnlyCollection<string> endTokens)
    {
        var json = new System.Text.Json.Nodes.JsonArray(messages.Select(m => (System.Text.Json.Nodes.JsonNode)m.ToJson()).ToArray());
        var (full, generation) = Render(() => template.RenderWithGeneration(json, addGenerationPrompt: false), messages.Count);
        if (template.Template.HasGenerationBlocks)
        {
            int promptEnd = from == 0 ? 0 : PrefixEnd(template, messages, from, full);
            return (full, generation.Where(g => g.Start >= promptEnd && g.End > g.Start).Select(g => (g.Start, g.End)).ToList());
        }
        var spans = new List<(int, int)>();
        for (int i = from; i < messages.Count; i++)
        {
            if (messages[i].Role != "assistant") continue;
            int start = PrefixEnd(template, messages, i, full);
            string turn = Render(() => template.Render(messages.Take(i + 1).ToList(), addGenerationPrompt: false), i + 1);
            CheckPrefix(turn, full, i + 1, addGenerationPrompt: false);
            if (turn.Length < start)
                throw new ExampleEncodingException($"the chat template is not prefix-stable: the generation prompt after messages[0..{i}) is not where messages[{i}] (assistant) begins");
            spans.Add((start, TrimAfterEndToken(full, start, turn.Length, endTokens)));
        }
        return (full, spans);
    }

    /// <summary>The length of messages[..count] rendered with the generation prompt, checked to be a prefix of <paramref name="full"/>.</summary>
    public static int PrefixEnd(ChatTemplate template, IReadOnlyList<ChatMessage> messages, int count, string full)
    {
        string prefix = Render(() => template.Render(messages.Take(count).ToList(), addGenerationPrompt: true), count);
        CheckPrefix(prefix, full, count, addGenerationPrompt: true);
        return prefix.Length;
    }

    static void CheckPrefix(string prefix, string full, int count, bool addGenerationPrompt)
    {
        if (full.StartsWith(prefix, StringComparison.Ordinal)) return;
        int at = 0;
        while (at < prefix.Length && at < full.Length && prefix[at] == full[at]) at++;
        string Show(string s) => Quote(s.Substring(at, Math.Min(24, s.Length - at)));
        throw new ExampleEncodingException(
            $"the chat template is not prefix-stable: messages[0..{count}) rendered {(addGenerationPrompt ? "with" : "without")} the generation prompt " +
            $"is not a prefix of the whole conversation (at character {at}: {Show(prefix)} vs {Show(full)}); " +
            "loss masks need a template whose earlier turns render the same in longer conversations, or one with {% generation %} blocks");
    }

    static T Render<T>(Func<T> render, int count)
    {
        try { return render(); }
        catch (TemplateRaisedException e) { throw new ExampleEncodingException($"the chat template refuses messages[0..{count}): {e.Message}"); }
        catch (JinjaException e) { throw new ExampleEncodingException($"the chat template fails on messages[0..{count}): {e.Message}"); }
    }

    /// <summary>
    /// Ends the span right after the last end token in it; only whitespace may follow that token inside the turn (the
    /// newline a template writes between turns is not the assistant's). A span without an end token is the whole
    /// turn (the encoder then appends EOS); text after the end token, such as a header for the next turn, is refused.
    /// </summary>
    static int TrimAfterEndToken(string text, int start, int end, IReadOnlyCollection<string> endTokens)
    {
        if (end <= start) return end;
        int best = -1;
        foreach (var token in endTokens)
        {
            if (token.Length == 0) continue;
            int at = text.LastIndexOf(token, end - 1, end - start, StringComparison.Ordinal);
            if (at >= 0) best = Math.Max(best, at + token.Length);
        }
        if (best < 0) return end;
        if (!text.AsSpan(best, end - best).IsWhiteSpace())
            throw new ExampleEncodingException(
                $"the chat template writes {Quote(text[best..Math.Min(end, best + 40)])} after the end of an assistant turn; " +
                "loss masks need a template that closes each assistant turn with its end token");
        return best;
    }

    static readonly System.Text.Json.JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Text as a JSON string literal, so newlines show as \n in a one-line message.</summary>
    static string Quote(string s) => System.Text.Json.JsonSerializer.Serialize(s, Relaxed);
}
