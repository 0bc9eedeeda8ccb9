using Rlft.Policy.Chat;

namespace Rlft.Rollout.Data;

/// <summary>What a stage reads: SFT examples (sft, distill), preference pairs (dpo, reward-model) or prompts (ppo, grpo, online-dpo).</summary>
public enum DataKind { Sft, Preferences, Prompts }

/// <summary>
/// What an SFT example's loss covers, as a stage's keys say. <paramref name="CompletionOnly"/> (<c>completion-only-loss</c>):
/// a prompt/completion example learns its completion only — for a conversational one, the completion's assistant
/// turns; off, the whole text. <paramref name="AssistantOnly"/> (<c>assistant-only-loss</c>): a <c>messages</c> example
/// learns every assistant turn and its end-of-turn token, nothing the template writes for the user or system; off,
/// the whole text. A conversational prompt/completion with completion-only-loss off keeps assistant-only-loss: then
/// the assistant turns of its prompt are learned too.
/// </summary>
public sealed record SftLoss(bool CompletionOnly = true, bool AssistantOnly = true)
{
    public static readonly SftLoss Default = new();
}

/// <summary>
/// An SFT example in one of TRL's formats, with where it came from (<c>file:line</c>). <c>Encode</c> gives
/// the sequence and loss mask as the model sees them; an example the template cannot encode is a
/// <see cref="DatasetException"/> naming the line.
/// </summary>
public abstract record SftRecord(string Where)
{
    internal EncodedExample Encode(ExampleEncoder encoder) => Encode(encoder, SftLoss.Default);
    internal EncodedExample Encode(ExampleEncoder encoder, SftLoss loss) => Guard(Where, () => EncodeWith(encoder, loss));
    private protected abstract EncodedExample EncodeWith(ExampleEncoder encoder, SftLoss loss);

    /// <summary>The prompt a held-out evaluation samples from (null when the example has none, e.g. a conversation that opens with the assistant).</summary>
    internal PromptInput? EvalPrompt(ExampleEncoder encoder) => Guard(Where, () => PromptWith(encoder));
    private protected abstract PromptInput? PromptWith(ExampleEncoder encoder);

    internal static T Guard<T>(string where, Func<T> encode)
    {
        try { return encode(); }
        catch (ExampleEncodingException e) { throw new DatasetException($"{where}: {e.Message}"); }
        catch (Policy.Chat.Jinja.JinjaException e) { throw new DatasetException($"{where}: the chat template fails: {e.Message}"); }
    }
}

/// <summary><c>{"prompt": "…", "completion": "…"}</c>: completion-only loss.</summary>
public sealed record TextSftRecord(string Where, string Prompt, string Completion) : SftRecord(Where)
{
    private protected override EncodedExample EncodeWith(ExampleEncoder encoder, SftLoss loss) =>
        loss.CompletionOnly ? encoder.PromptCompletion(Prompt, Completion) : encoder.PromptCompletion(Prompt, Completion).WithLossOnAll();

    private protected override PromptInput? PromptWith(ExampleEncoder encoder) => PromptInput.Plain(Prompt);
}

/// <summary><c>{"messages": [...]}</c>: loss on every assistant turn (content and end-of-turn token).</summary>
public sealed record MessagesSftRecord(string Where, IReadOnlyList<ChatMessage> Messages) : SftRecord(Where)
{
    private protected override EncodedExample EncodeWith(ExampleEncoder encoder, SftLoss loss) =>
        loss.AssistantOnly ? encoder.Conversation(Messages) : encoder.Conversation(Messages).WithLossOnAll();

    /// <summary>The messages before the first assistant turn.</summary>
    private protected override PromptInput? PromptWith(ExampleEncoder encoder)
    {
        var before = Messages.TakeWhile(m => m.Role != "assistant").ToList();
        return before.Count == 0 ? null : PromptInput.Chat(before, encoder);
    }
}

/// <summary><c>{"prompt": [...], "completion": [...]}</c>: loss on the completion's assistant turns.</summary>
public sealed record ChatSftRecord(string Where, IReadOnlyList<ChatMessage> Prompt, IReadOnlyList<ChatMessage> Completion) : SftRecord(Where)
{
    private protected override EncodedExample EncodeWith(ExampleEncoder encoder, SftLoss loss) =>
        loss.CompletionOnly ? encoder.Conversation(Prompt, Completion)
        : loss.AssistantOnly ? encoder.Conversation([.. Prompt, .. Completion])
        : encoder.Conversation(Prompt, Completion).WithLossOnAll();

    private protected override PromptInput? PromptWith(ExampleEncoder encoder) => PromptInput.Chat(Prompt, encoder);
}

/// <summary>A preference pair in one of TRL's formats; <see cref="Encode"/> gives both sides as the model sees them.</summary>
public abstract record PreferenceRecord(string Where)
{
    /// <summary>The optional <c>label</c> field: P(chosen ≻ rejected) in [½, 1] (default 1).</summary>
    public double Target { get; init; } = 1;
    /// <summary>The optional <c>weight</c> field: the pair's weight, &gt; 0 (default 1).</summary>
    public double Weight { get; init; } = 1;

    internal EncodedPair Encode(ExampleEncoder encoder) => SftRecord.Guard(Where, () => EncodeWith(encoder) with { Target = Target, Weight = Weight });
    private protected abstract EncodedPair EncodeWith(ExampleEncoder encoder);

    /// <summary>The shared prompt, for sampling (null for a conversation whose sides share no leading message).</summary>
    internal PromptInput? EvalPrompt(ExampleEncoder encoder) => SftRecord.Guard(Where, () => PromptWith(encoder));
    private protected abstract PromptInput? PromptWith(ExampleEncoder encoder);
}

/// <summary><c>{"prompt": "…", "chosen": "…", "rejected": "…"}</c>.</summary>
public sealed record TextPreferenceRecord(string Where, string Prompt, string Chosen, string Rejected) : PreferenceRecord(Where)
{
    private protected override EncodedPair EncodeWith(ExampleEncoder encoder) => new(encoder.PromptCompletion(Prompt, Chosen), encoder.PromptCompletion(Prompt, Rejected));
    private protected override PromptInput? PromptWith(ExampleEncoder encoder) => PromptInput.Plain(Prompt);
}

/// <summary>
/// <c>{"prompt": [...], "chosen": [...], "rejected": [...]}</c>, or <c>chosen</c>/<c>rejected</c> as whole conversations
/// whose shared leading messages are the prompt (TRL's implicit prompt).
/// </summary>
public sealed record ChatPreferenceRecord(string Where, IReadOnlyList<ChatMessage> Prompt, IReadOnlyList<ChatMessage> Chosen, IReadOnlyList<ChatMessage> Rejected) : PreferenceRecord(Where)
{
    private protected override EncodedPair EncodeWith(ExampleEncoder encoder) => new(encoder.Conversation(Prompt, Chosen), encoder.Conversation(Prompt, Rejected));
    private protected override PromptInput? PromptWith(ExampleEncoder encoder) => Prompt.Count == 0 ? null : PromptInput.Chat(Prompt, encoder);
}

/// <summary>A prompt for the online stages, with the reference answer of verifiable tasks.</summary>
public abstract record PromptRecord(string Where, string? Answer)
{
    /// <summary>Prompt ids for generation (a conversation is rendered with the generation prompt).</summary>
    internal int[] Encode(ExampleEncoder encoder) => SftRecord.Guard(Where, () => EncodeWith(encoder));
    private protected abstract int[] EncodeWith(ExampleEncoder encoder);

    /// <summary>The prompt with its answer, as the evaluator and rollout workers take it (the text of a conversation rendered).</summary>
    internal PromptInput Input(ExampleEncoder encoder) => SftRecord.Guard(Where, () => InputWith(encoder));
    private protected abstract PromptInput InputWith(ExampleEncoder encoder);
}

/// <summary><c>{"prompt": "…"}</c>.</summary>
public sealed record TextPromptRecord(string Where, string Prompt, string? Answer = null) : PromptRecord(Where, Answer)
{
    private protected override int[] EncodeWith(ExampleEncoder encoder) => encoder.Prompt(Prompt);
    private protected override PromptInput InputWith(ExampleEncoder encoder) => PromptInput.Plain(Prompt, Answer);
}

/// <summary><c>{"prompt": [...]}</c>: a conversation the policy continues as the assistant.</summary>
public sealed record ChatPromptRecord(string Where, IReadOnlyList<ChatMessage> Prompt, string? Answer = null) : PromptRecord(Where, Answer)
{
    private protected override int[] EncodeWith(ExampleEncoder encoder) => encoder.ChatPrompt(Prompt);
    private protected override PromptInput InputWith(ExampleEncoder encoder) => PromptInput.Chat(Prompt, encoder, Answer);
}
