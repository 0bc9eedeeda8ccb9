namespace Rlft.Actors.Feedback;

// The rater workflow beyond rating (event schema 2): skipping and flagging, undo, guidelines, raters managed at
// runtime, progress and the admin overview. Replies to refused commands are RatingRejected with a code.

// ---- skip and flag ----------------------------------------------------------------------------------------------

/// <summary>A rater puts back the item they hold: skipped (it goes to someone else) or <paramref name="Broken"/> (flagged for the admin too).</summary>
internal sealed record SetAsideTask(string Rater, string TaskId, bool Broken, string? Reason) : IFeedbackMessage;

/// <summary>Sent once durable; <paramref name="Duplicate"/> for a repeat of the same request.</summary>
internal sealed record TaskSetAside(string TaskId, bool Broken, bool Duplicate) : IFeedbackMessage;

internal sealed record ItemSetAside(string ItemId, string Rater, bool Broken, string? Reason, long AtMs) : IFeedbackEvent;

// ---- undo -------------------------------------------------------------------------------------------------------

/// <summary>Takes back the rater's most recent rating (<paramref name="RatingId"/> null: whichever that is).</summary>
internal sealed record UndoRating(string Rater, string? RatingId) : IFeedbackMessage;

internal sealed record UndoAccepted(string RatingId, string TaskId, bool Duplicate) : IFeedbackMessage;

/// <summary>
/// A rating taken back: it leaves the item's ratings (the journal keeps it) and the rater holds the item again until
/// <paramref name="LeaseExpiresAtMs"/>, so the page can show it for a new answer.
/// </summary>
internal sealed record RatingUndone(string RatingId, string TaskId, string Rater, long AtMs, long LeaseExpiresAtMs) : IFeedbackEvent;

// ---- the admin's item actions -----------------------------------------------------------------------------------

/// <summary>Closes an open item as <see cref="ResolutionOutcome.Discarded"/> (its fallback applies).</summary>
internal sealed record DiscardItem(string ItemId, string Reason) : IFeedbackMessage;

internal sealed record ItemDiscarded(string ItemId, bool Duplicate) : IFeedbackMessage;

// ---- guidelines -------------------------------------------------------------------------------------------------

internal sealed record SetGuideline(string Name, string Markdown, string Source) : IFeedbackMessage;

/// <summary><paramref name="Changed"/> false: the text equals the current version, which is kept.</summary>
internal sealed record GuidelineStored(GuidelineRef Guideline, bool Changed) : IFeedbackMessage;

/// <summary>A new version of a guideline; <paramref name="Source"/> is "admin" or "config".</summary>
internal sealed record GuidelineSet(string Name, int Version, string Markdown, string Source, long AtMs) : IFeedbackEvent;

internal sealed record GetGuidelines : IFeedbackMessage
{
    public static readonly GetGuidelines Instance = new();
}

/// <summary>Every version of every guideline, by name then version.</summary>
internal sealed record GuidelineList(IReadOnlyList<GuidelineVersion> Versions) : IFeedbackMessage;

// ---- raters -----------------------------------------------------------------------------------------------------

internal enum RaterChange { Add, Revoke, IssueToken }

/// <summary>Adds a rater, revokes one, or gives one a new token (which also lifts a revocation made here).</summary>
internal sealed record ChangeRater(RaterChange Change, string Name, string? TokenSha256) : IFeedbackMessage;

internal sealed record RaterChanged(string Name, RaterChange Change) : IFeedbackMessage;

internal interface IRaterEvent : IFeedbackEvent
{
    string Name { get; }
}

internal sealed record RaterAdded(string Name, string TokenSha256, long AtMs) : IRaterEvent;

internal sealed record RaterTokenIssued(string Name, string TokenSha256, long AtMs) : IRaterEvent;

internal sealed record RaterRevoked(string Name, long AtMs) : IRaterEvent;

/// <summary>What the journal says about a rater (a null token: the configured one).</summary>
internal sealed record RaterState(string Name, string? TokenSha256, bool Revoked, long AddedAtMs, long ChangedAtMs);

// ---- progress and the admin overview ----------------------------------------------------------------------------

/// <summary>One rater's progress: ratings since <paramref name="SinceMs"/> (the start of their day) and what still waits for them.</summary>
internal sealed record GetRaterProgress(string Rater, long SinceMs) : IFeedbackMessage;

internal sealed record RaterProgress(
    string Rater,
    int Rated,
    int RatedSince,
    int Skipped,
    int Flagged,
    int Remaining,
    int Pending,
    string? UndoRatingId,
    long? UndoUntilMs) : IFeedbackMessage;

internal sealed record GetOverview : IFeedbackMessage
{
    public static readonly GetOverview Instance = new();
}

/// <summary>The admin view, all of it a fold of the journal (see <see cref="FeedbackOverviewBuilder"/>).</summary>
internal sealed record FeedbackOverview(
    long AtMs,
    int Pending,
    int Rated,
    int TimedOut,
    int Discarded,
    int Ratings,
    double? CompareAlpha,
    double? ScoreAlpha,
    IReadOnlyList<RaterOverview> Raters,
    IReadOnlyList<HourCount> Hours,
    IReadOnlyList<PairAgreement> Pairs,
    IReadOnlyList<FlaggedItem> Flagged) : IFeedbackMessage;

/// <summary>
/// <paramref name="PerHour"/>: ratings per hour between the rater's first and last rating (counted as at least one
/// hour). <paramref name="CompareAlpha"/>, <paramref name="ScoreAlpha"/>: Krippendorff's α over the pairs (this rater,
/// another rater) of answers to the same pair item or score cell, nominal and interval; <paramref name="Shared"/>:
/// the items this rater answered that someone else answered too.
/// </summary>
internal sealed record RaterOverview(
    string Name,
    string Source,
    bool Revoked,
    int Rated,
    int Skipped,
    int Flagged,
    int Undone,
    long? FirstAtMs,
    long? LastAtMs,
    double? PerHour,
    double? CompareAlpha,
    double? ScoreAlpha,
    int Shared);

internal sealed record HourCount(long HourMs, IReadOnlyDictionary<string, int> PerRater);

/// <summary>
/// Cohen's κ of two raters over what both answered: pair items (A, B, tie, both bad as categories) and score cells
/// (1..7 as categories) separately; null where they share nothing or chance agreement is total.
/// </summary>
internal sealed record PairAgreement(string A, string B, int SharedItems, double? CompareKappa, double? ScoreKappa);

internal sealed record FlaggedItem(string ItemId, string Prompt, ResolutionOutcome? Outcome, IReadOnlyList<ItemSetAside> Flags);
