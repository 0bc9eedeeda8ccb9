namespace Rlft.Actors.Feedback;

/// <summary>One turn of a conversation, as in TRL's conversational datasets: <c>{"role", "content"}</c>.</summary>
internal sealed record ChatMessage(string Role, string Content);

/// <summary>Whether the page asks for a free-text rationale with each answer.</summary>
public enum RationalePolicy { Off, Optional, Required }

/// <summary>A guideline by name and version (versions count from 1 per name).</summary>
internal sealed record GuidelineRef(string Name, int Version);

/// <summary>A guideline's text at one version (Markdown).</summary>
internal sealed record GuidelineVersion(string Name, int Version, string Markdown, long AtMs, string Source);

/// <summary>The vocabulary of answers, and the checks on an item's schema-2 parts.</summary>
internal static class ItemParts
{
    public const string Tie = "tie";
    public const string BothBad = "both-bad";
    public const string Slightly = "slightly";
    public const string Much = "much";
    public const int MaxRationaleLength = 4000;
    public const int MaxMessagesLength = 4 * FeedbackItem.MaxTextLength;
    public static readonly string[] AllVerdicts = [Tie, BothBad];
    public static readonly string[] Strengths = [Slightly, Much];
    public static readonly string[] Roles = ["system", "user", "assistant", "tool"];

    /// <summary>Null when the conversation, guideline, verdicts, strength and criteria of <paramref name="item"/> are well formed.</summary>
    public static string? Problem(FeedbackItem item)
    {
        if (item.Messages is { } messages)
        {
            if (messages.Count is 0 or > FeedbackItem.MaxMessages) return $"messages: expected 1..{FeedbackItem.MaxMessages} messages";
            long total = 0;
            for (int i = 0; i < messages.Count; i++)
            {
                var m = messages[i];
                if (m is null) return $"messages[{i}]: missing";
                if (!Roles.Contains(m.Role)) return $"messages[{i}].role: expected one of {string.Join(", ", Roles)}";
                if (m.Content is null) return $"messages[{i}].content: missing";
                if (m.Content.Length > FeedbackItem.MaxTextLength) return $"messages[{i}].content: longer than {FeedbackItem.MaxTextLength} characters";
                total += m.Content.Length;
            }
            if (total > MaxMessagesLength) return $"messages: longer than {MaxMessagesLength} characters in all";
            if (messages[^1].Role == "assistant")
                return $"messages[{messages.Count - 1}].role: the completions are the next assistant turn, so the conversation must not end with an assistant message";
        }
        if (item.Guideline is not null && !FeedbackItem.IsValidId(item.Guideline)) return "guideline: expected a name of 1-128 characters of A-Z a-z 0-9 . _ : -";
        if (item.Verdicts is null) return "verdicts: missing";
        if (item.Verdicts.Count > 0 && item.Kind != FeedbackKind.Compare) return "verdicts: only compare items take verdicts";
        if (item.Verdicts.FirstOrDefault(v => !AllVerdicts.Contains(v)) is { } bad) return $"verdicts: '{bad}' is not one of {string.Join(", ", AllVerdicts)}";
        if (item.Verdicts.Distinct().Count() != item.Verdicts.Count) return "verdicts: a verdict appears twice";
        if (item.AskStrength && item.Kind != FeedbackKind.Compare) return "strength: only compare items take a strength";
        if (!Enum.IsDefined(item.Rationale)) return "rationale: expected off, optional or required";
        if (item.Criteria is null) return "criteria: missing";
        if (item.Criteria.Count > 0 && item.Kind != FeedbackKind.Score) return "criteria: only score items take criteria";
        if (item.Criteria.Count > FeedbackItem.MaxCriteria) return $"criteria: at most {FeedbackItem.MaxCriteria}";
        for (int i = 0; i < item.Criteria.Count; i++)
            if (!FeedbackItem.IsValidId(item.Criteria[i])) return $"criteria[{i}]: expected a name of 1-128 characters of A-Z a-z 0-9 . _ : -";
        if (item.Criteria.Distinct().Count() != item.Criteria.Count) return "criteria: a criterion appears twice";
        return null;
    }

    public static string RationaleName(RationalePolicy p) => p switch
    {
        RationalePolicy.Off => "off",
        RationalePolicy.Required => "required",
        _ => "optional",
    };
}
