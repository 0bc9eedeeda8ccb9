namespace Rlft.Policy.Chat;

/// <summary>
/// A prompt the policy completes: plain text, or a conversation (<see cref="Messages"/>) it continues as the
/// assistant. For a conversation <see cref="Text"/> is what the chat template renders with the generation prompt —
/// the text the model sees, shown in samples and sent to scorers as the prompt.
/// </summary>
internal sealed record PromptInput(string Text, string? Answer = null, IReadOnlyList<ChatMessage>? Messages = null)
{
    /// <summary>A plain-text prompt.</summary>
    public static PromptInput Plain(string text, string? answer = null) => new(text, answer);

    /// <summary>A conversation, rendered with <paramref name="encoder"/>'s template and the generation prompt.</summary>
    public static PromptInput Chat(IReadOnlyList<ChatMessage> messages, ExampleEncoder encoder, string? answer = null) =>
        new(encoder.RenderPrompt(messages), answer, messages);

    /// <summary>The prompt ids for generation (a conversation rendered with the generation prompt, nothing added).</summary>
    public int[] Encode(ExampleEncoder encoder) => Messages is null ? encoder.Prompt(Text) : encoder.ChatPrompt(Messages);

    /// <summary>The prompt with <paramref name="completion"/> as the model sees them together: the assistant's reply to a conversation.</summary>
    public EncodedExample WithCompletion(ExampleEncoder encoder, string completion) => Messages is null
        ? encoder.PromptCompletion(Text, completion)
        : encoder.Conversation(Messages, [new ChatMessage("assistant", completion)]);

    /// <summary>What a task's rule reads as the question: the last user message of a conversation, else the text.</summary>
    public string TaskText => LastUserContent(Messages) ?? Text;

    /// <summary>The content of the last user message, or null when there is none.</summary>
    public static string? LastUserContent(IReadOnlyList<ChatMessage>? messages) =>
        messages?.LastOrDefault(m => m.Role == "user")?.Content;
}
