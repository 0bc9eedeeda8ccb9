using System.Text.Json.Serialization;

namespace Rlft.Rollout.Data;

/// <summary>A prompt for RL stages: <c>{"prompt": "...", "answer": "..."}</c> (answer for verifiable tasks).</summary>
public sealed record PromptExample(
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("answer"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Answer = null);

/// <summary>An SFT pair: <c>{"prompt": "...", "completion": "..."}</c>.</summary>
public sealed record SftExample(
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("completion")] string Completion);

/// <summary>A preference pair: <c>{"prompt": "...", "chosen": "...", "rejected": "..."}</c> (TRL format).</summary>
public sealed record PreferenceExample(
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("chosen")] string Chosen,
    [property: JsonPropertyName("rejected")] string Rejected);
