using Rlft.Policy.Tokenization;

namespace Rlft.Policy.Chat;

/// <summary>
/// Turns examples into <see cref="EncodedExample"/>s as the model sees them. An example is one text — prompt and
/// completion concatenated, or a conversation rendered by the chat template — encoded once; the prompt/completion
/// boundary and the loss spans are character positions of that text mapped to tokens. Nothing is encoded on its
/// own and glued: merges across the boundary are the model's ("Hello " + "world" is "Hello", " world"), a
/// SentencePiece normalizer adds its "▁" once, and a BOS from the post-processor can only come first.
/// </summary>
/// <remarks>
/// <para>Character → token: a position c maps to the length of the longest common prefix of the ids of text[..c]
/// and of the whole text (no offsets needed from the tokenizer). A token that straddles c — it holds characters
/// from both sides — therefore belongs to what follows c: a completion or an assistant span starts at the
/// straddling token (every completion character is learned), and a span that ends inside a token stops before it.</para>
/// <para>Plain text gets the post-processor's prefix (e.g. BOS) in front, as <c>tokenizer(prompt + completion)</c>
/// does; rendered conversations get nothing added, as <c>apply_chat_template(tokenize=True)</c>. EOS is appended
/// (and learned) only when the text does not already end with an end token.</para>
/// </remarks>
internal sealed class ExampleEncoder
{
    readonly HashSet<int> _endIds;

    public ITokenizer Tokenizer { get; }
    public ChatTemplate? Template { get; }
    /// <summary>Ids that end a turn or a sequence: EOS, the template's end-of-turn token, and any given.</summary>
    public IReadOnlySet<int> EndIds => _endIds;
    /// <summary>The text of the end ids that are special tokens (what closes an assistant span).</summary>
    public IReadOnlyList<string> EndTexts { get; }

    public ExampleEncoder(ITokenizer tokenizer, ChatTemplate? template = null, IEnumerable<int>? endIds = null)
    {
        Tokenizer = tokenizer;
        Template = template;
        _endIds = [tokenizer.EosId, .. endIds ?? []];
        if (template is not null && EndTokens.EndOfTurn(template, tokenizer) is { } eot) _endIds.Add(tokenizer.SpecialTokens[eot]);
        EndTexts = tokenizer.SpecialTokens.Where(kv => _endIds.Contains(kv.Value)).Select(kv => kv.Key).ToList();
    }

    /// <summary>A plain prompt for generation: the post-processor's prefix and the prompt; an empty one is BOS (or EOS).</summary>
    public int[] Prompt(string prompt)
    {
        int[] ids = [.. Tokenizer.PrefixIds, .. Tokenizer.Encode(prompt, addSpecialTokens: false)];
        return ids.Length > 0 ? ids : [Tokenizer.BosId ?? Tokenizer.EosId];
    }

    /// <summary>
    /// A plain prompt and completion as one sequence with completion-only loss (and EOS after it, unless
    /// <paramref name="appendEos"/> is false or the completion already ends with an end token).
    /// </summary>
    public EncodedExample PromptCompletion(string prompt, string completion, bool appendEos = true)
    {
        string text = prompt + completion;
        var raw = Tokenizer.Encode(text, addSpecialTokens: false);
        return Assemble(text, raw, Tokenizer.PrefixIds.ToArray(), [(prompt.Length, text.Length)], promptChars: prompt.Length, appendEos);
    }

    /// <summary>The text of a conversational prompt: rendered with the generation prompt.</summary>
    public string RenderPrompt(IReadOnlyList<ChatMessage> prompt) => RequireTemplate().Render(prompt, addGenerationPrompt: true);

    /// <summary>A conversational prompt for generation: rendered with the generation prompt, encoded without special tokens.</summary>
    public int[] ChatPrompt(IReadOnlyList<ChatMessage> prompt)
    {
        string text = RenderPrompt(prompt);
        var ids = Tokenizer.Encode(text, addSpecialTokens: false);
        return ids.Length > 0 ? ids : [Tokenizer.BosId ?? Tokenizer.EosId];
    }

    /// <summary>A <c>messages</c> example with assistant-only loss: every assistant turn's content and its end-of-turn token.</summary>
    public EncodedExample Conversation(IReadOnlyList<ChatMessage> messages) => Chat(messages, from: 0);

    /// <summary>
    /// A conversational prompt/completion: the loss covers the completion's assistant turns (content and end-of-turn
    /// token); the prompt is what the template renders for <paramref name="prompt"/> with the generation prompt.
    /// </summary>
    public EncodedExample Conversation(IReadOnlyList<ChatMessage> prompt, IReadOnlyList<ChatMessage> completion) =>
        Chat([.. prompt, .. completion], from: prompt.Count);

    EncodedExample Chat(IReadOnlyList<ChatMessage> messages, int from)
    {
        var template = RequireTemplate();
        if (!messages.Skip(from).Any(m => m.Role == "assistant")) throw new ExampleEncodingException("no assistant message to learn from");
        var (text, spans) = AssistantSpans.Find(template, messages, from, EndTexts);
        if (spans.Count == 0) throw new ExampleEncodingException("the chat template marks no assistant output");
        int promptChars = from > 0 ? AssistantSpans.PrefixEnd(template, messages, from, text) : spans[0].Start;
        var raw = Tokenizer.Encode(text, addSpecialTokens: false);
        // EOS is appended only when the conversation ends with an assistant turn that the template did not close.
        return Assemble(text, raw, [], spans, promptChars, appendEos: messages[^1].Role == "assistant");
    }

    ChatTemplate RequireTemplate() => Template ?? throw new ExampleEncodingException("conversational data needs a chat template, and the model has none (give one with chat-template)");

    /// <summary>Maps character spans to tokens and builds the example (see the class remarks for the rule).</summary>
    EncodedExample Assemble(string text, int[] raw, int[] prefix, IReadOnlyList<(int Start, int End)> spans, int promptChars, bool appendEos)
    {
        var boundaries = new Dictionary<int, int>();
        int Token(int c)
        {
            if (c <= 0) return 0;
            if (c >= text.Length) return raw.Length;
            if (boundaries.TryGetValue(c, out int t)) return t;
            var head = Tokenizer.Encode(text[..c], addSpecialTokens: false);
            int n = 0;
            while (n < head.Length && n < raw.Length && head[n] == raw[n]) n++;
            return boundaries[c] = n;
        }

        var ids = new List<int>(prefix.Length + raw.Length + 2);
        ids.AddRange(prefix);
        ids.AddRange(raw);
        var mask = new bool[ids.Count];
        foreach (var (start, end) in spans)
            for (int i = Token(start); i < Token(end); i++) mask[prefix.Length + i] = true;
        int promptLength = prefix.Length + Token(promptChars);
        int lastEnd = spans.Count > 0 ? prefix.Length + Token(spans[^1].End) : ids.Count;   // where the last span ends, in tokens
        if (appendEos && (lastEnd == 0 || !mask[lastEnd - 1] || !_endIds.Contains(ids[lastEnd - 1])))
        {
            // Nothing closes the last span: EOS goes at the end, and the loss runs from the span's end to it
            // (only template text of that last turn lies between), so the model learns to stop.
            ids.Add(Tokenizer.EosId);
            Array.Resize(ref mask, ids.Count);
            for (int i = lastEnd; i < ids.Count; i++) mask[i] = true;
        }
        if (promptLength == 0)
        {
            // No token before the completion: start from BOS (or EOS), as generation would.
            ids.Insert(0, Tokenizer.BosId ?? Tokenizer.EosId);
            mask = [false, .. mask];
            promptLength = 1;
        }
        int firstLoss = Array.IndexOf(mask, true);
        if (firstLoss >= 0 && firstLoss < promptLength) promptLength = firstLoss;
        if (promptLength == 0) throw new ExampleEncodingException("the first token carries loss and has no context");
        return new EncodedExample([.. ids], promptLength, mask).Validate();
    }
}
