using Rlft.Policy.Chat;

namespace Rlft.Rollout.Data;

/// <summary>What a stage reads: SFT examples (sft, distill), preference pairs (dpo, reward-model) or prompts (ppo, grpo, online-dpo).</summary>
public enum DataKind { Sft, Preferences, Prompts }

/// <summary>
/// An SFT example in one of TRL's formats, with where it came from (<c>file:line</c>). <see cref="Encode"/> gives
/// the sequence and loss mask as the model sees them; an example the template cannot encode is a
/// <see cref="DatasetException"/> naming the line.
/// </summary>
public abstract record SftRecord(string Where)
{
    public EncodedExample Encode(ExampleEncoder encoder) => Guard(Where, () => EncodeWith(encoder));
    protected abstract EncodedExample EncodeWith(ExampleEncoder encoder);

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
    protected override EncodedExample EncodeWith(ExampleEncoder encoder) => encoder.PromptCompletion(Prompt, Completion);
}

/// <summary><c>{"messages": [...]}</c>: loss on every assistant turn (content and end-of-turn token).</summary>
public sealed record MessagesSftRecord(string Where, IReadOnlyList<ChatMessage> Messages) : SftRecord(Where)
{
    protected override EncodedExample EncodeWith(ExampleEncoder encoder) => encoder.Conversation(Messages);
}

/// <summary><c>{"prompt": [...], "completion": [...]}</c>: loss on the completion's assistant turns.</summary>
public sealed record ChatSftRecord(string Where, IReadOnlyList<ChatMessage> Prompt, IReadOnlyList<ChatMessage> Completion) : SftRecord(Where)
{
    protected override EncodedExample EncodeWith(ExampleEncoder encoder) => encoder.Conversation(Prompt, Completion);
}

/// <summary>A preference pair in one of TRL's formats; <see cref="Encode"/> gives both sides as the model sees them.</summary>
public abstract record PreferenceRecord(string Where)
{
    public EncodedPair Encode(ExampleEncoder encoder) => SftRecord.Guard(Where, () => EncodeWith(encoder));
    protected abstract EncodedPair EncodeWith(ExampleEncoder encoder);
}

/// <summary><c>{"prompt": "…", "chosen": "…", "rejected": "…"}</c>.</summary>
public sealed record TextPreferenceRecord(string Where, string Prompt, string Chosen, string Rejected) : PreferenceRecord(Where)
{
    protected override EncodedPair EncodeWith(ExampleEncoder encoder) => new(encoder.PromptCompletion(Prompt, Chosen), encoder.PromptCompletion(Prompt, Rejected));
}

/// <summary>
/// <c>{"prompt": [...], "chosen": [...], "rejected": [...]}</c>, or <c>chosen</c>/<c>rejected</c> as whole conversations
/// whose shared leading messages are the prompt (TRL's implicit prompt).
/// </summary>
public sealed record ChatPreferenceRecord(string Where, IReadOnlyList<ChatMessage> Prompt, IReadOnlyList<ChatMessage> Chosen, IReadOnlyList<ChatMessage> Rejected) : PreferenceRecord(Where)
{
    protected override EncodedPair EncodeWith(ExampleEncoder encoder) => new(encoder.Conversation(Prompt, Chosen), encoder.Conversation(Prompt, Rejected));
}

/// <summary>A prompt for the online stages, with the reference answer of verifiable tasks.</summary>
public abstract record PromptRecord(string Where, string? Answer)
{
    /// <summary>Prompt ids for generation (a conversation is rendered with the generation prompt).</summary>
    public int[] Encode(ExampleEncoder encoder) => SftRecord.Guard(Where, () => EncodeWith(encoder));
    protected abstract int[] EncodeWith(ExampleEncoder encoder);
}

/// <summary><c>{"prompt": "…"}</c>.</summary>
public sealed record TextPromptRecord(string Where, string Prompt, string? Answer = null) : PromptRecord(Where, Answer)
{
    protected override int[] EncodeWith(ExampleEncoder encoder) => encoder.Prompt(Prompt);
}

/// <summary><c>{"prompt": [...]}</c>: a conversation the policy continues as the assistant.</summary>
public sealed record ChatPromptRecord(string Where, IReadOnlyList<ChatMessage> Prompt, string? Answer = null) : PromptRecord(Where, Answer)
{
    protected override int[] EncodeWith(ExampleEncoder encoder) => encoder.ChatPrompt(Prompt);
}
