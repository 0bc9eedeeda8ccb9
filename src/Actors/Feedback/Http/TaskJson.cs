namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// The JSON shapes the page reads: a task (its texts as given and as safe HTML rendered from Markdown, what the
/// rater may answer, the guideline it is rated under) and a rater's progress.
/// </summary>
internal static class TaskJson
{
    public static object Task(TaskOffer o) => new
    {
        taskId = o.Item.Id,
        kind = o.Item.Kind == FeedbackKind.Compare ? "compare" : "score",
        prompt = o.Item.Prompt,
        promptHtml = o.Item.Prompt.Length == 0 ? "" : SafeMarkdown.ToHtml(o.Item.Prompt),
        messages = o.Item.Messages?.Select(m => new { role = m.Role, content = m.Content, html = SafeMarkdown.ToHtml(m.Content) }),
        completions = o.Item.Completions.Select(c => new { id = c.Id, text = c.Text, html = SafeMarkdown.ToHtml(c.Text) }),
        leaseExpiresAt = FeedbackEndpoints.Time(o.LeaseExpiresAtMs),
        verdicts = o.Item.Verdicts,
        strength = o.Item.AskStrength,
        rationale = ItemParts.RationaleName(o.Item.Rationale),
        criteria = o.Item.Criteria,
        guideline = o.Guideline is { } g ? Guideline(g) : null,
    };

    public static object Guideline(GuidelineVersion g) =>
        new { name = g.Name, version = g.Version, html = SafeMarkdown.ToHtml(g.Markdown), updatedAt = FeedbackEndpoints.Time(g.AtMs) };

    public static object Progress(RaterProgress p, TimeSpan undoWindow) => new
    {
        rater = p.Rater,
        rated = p.Rated,
        ratedSince = p.RatedSince,
        skipped = p.Skipped,
        flagged = p.Flagged,
        remaining = p.Remaining,
        pending = p.Pending,
        undo = p.UndoRatingId is { } id ? new { ratingId = id, until = FeedbackEndpoints.Time(p.UndoUntilMs!.Value) } : null,
        undoSeconds = (int)undoWindow.TotalSeconds,
    };
}
