namespace Rlft.Reward;

/// <summary>
/// One prompt/completion pair to score; <paramref name="Reference"/> is the verifiable answer when the task has one.
/// For a conversational prompt, <paramref name="Prompt"/> is the text the policy saw (the conversation rendered by its
/// chat template with the generation prompt), <paramref name="Messages"/> the conversation itself and
/// <paramref name="Completion"/> the assistant's reply (without its end-of-turn token): rules read
/// <see cref="TaskText"/>, HTTP scorers receive the messages, reward models render the conversation their own way.
/// </summary>
public sealed record RewardSample(
    string Prompt,
    string Completion,
    string? Reference = null,
    IReadOnlyDictionary<string, string>? Metadata = null,
    IReadOnlyList<Rlft.Policy.Chat.ChatMessage>? Messages = null)
{
    /// <summary>What a rule reads as the question: the last user message of a conversation, else the prompt.</summary>
    public string TaskText => Rlft.Policy.Chat.PromptInput.LastUserContent(Messages) ?? Prompt;

    /// <summary>The prompt as the policy's side saw it (text, or the rendered conversation and its messages).</summary>
    internal Rlft.Policy.Chat.PromptInput AsPrompt => new(Prompt, Reference, Messages);
}

/// <summary>A source's verdict on one sample: a finite score, or a failure with its reason (never both).</summary>
public readonly record struct SampleScore
{
    public double? Value { get; }
    public string? Failure { get; }

    SampleScore(double? value, string? failure)
    {
        Value = value;
        Failure = failure;
    }

    /// <summary>A score; NaN and infinities become failures ("non-finite score (NaN)") so no caller has to check twice.</summary>
    public static SampleScore Ok(double value) =>
        double.IsFinite(value) ? new(value, null) : new(null, $"{NonFinite} ({value.ToString(System.Globalization.CultureInfo.InvariantCulture)})");

    /// <summary>The words every failure for a NaN or infinite score starts with (the reward/nonfinite count looks for them).</summary>
    public const string NonFinite = "non-finite score";

    public static SampleScore Fail(string reason) => new(null, reason);

    public bool IsOk => Value.HasValue;

    public override string ToString() => Value is { } v ? v.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : $"failed: {Failure}";
}

/// <summary>A source's scores for a batch, one per sample, in batch order.</summary>
public sealed record SourceScores(string Source, IReadOnlyList<SampleScore> Scores)
{
    /// <summary>Every sample failed for the same reason (a timeout, a refused request).</summary>
    public static SourceScores AllFailed(string source, int count, string reason) =>
        new(source, Enumerable.Repeat(SampleScore.Fail(reason), count).ToArray());
}

/// <summary>
/// Anything that scores completions: rules, a reward model, a remote scorer, human raters.
/// Batched and asynchronous because the expensive ones (models, HTTP, people) are; a source reports
/// per-sample failures in its result and throws only when the cancellation token is cancelled.
/// </summary>
public interface IRewardSource
{
    string Name { get; }
    Task<SourceScores> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct);
}
