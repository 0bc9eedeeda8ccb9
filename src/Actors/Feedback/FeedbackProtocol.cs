using System.Text.RegularExpressions;
using Akka.Actor;

namespace Rlft.Actors.Feedback;

/// <summary>Marker for every feedback message and event: binds them to <see cref="FeedbackSerializer"/> in HOCON.</summary>
public interface IFeedbackMessage;

/// <summary>Marker for the events the feedback actor persists (a subset of the messages).</summary>
public interface IFeedbackEvent : IFeedbackMessage;

/// <summary>compare: a pair of completions for one prompt, the rater picks one. score: each completion gets 1..7.</summary>
public enum FeedbackKind { Compare, Score }

/// <summary>How an item ended: enough ratings arrived, or its timeout passed first (the fallback applies).</summary>
public enum ResolutionOutcome { Rated, TimedOut }

public sealed record Completion(string Id, string Text);

/// <summary>
/// One unit of human work. <paramref name="Origin"/> is opaque to the feedback actor: the producer (the reward
/// pipeline's human source, a preference-collection job, the admin API) uses it to find its batch and sample again.
/// <paramref name="Fallback"/> says what the consumer should do when the item times out (e.g. "drop" or
/// "source:reward-model"); the feedback actor only records it and marks the resolution.
/// </summary>
public sealed record FeedbackItem(
    string Id,
    FeedbackKind Kind,
    string Prompt,
    IReadOnlyList<Completion> Completions,
    int RatersNeeded,
    long TimeoutMs,
    string Fallback,
    string? Origin)
{
    public const int MaxTextLength = 32_768;
    public const int MaxScoreCompletions = 8;
    public const int MaxRatersNeeded = 100;
    public const long MaxTimeoutMs = 30L * 24 * 3600 * 1000;
    static readonly Regex IdPattern = new("^[A-Za-z0-9._:-]{1,128}$", RegexOptions.CultureInvariant);

    public static bool IsValidId(string? id) => id is not null && IdPattern.IsMatch(id);

    /// <summary>Null when the item is well formed, otherwise what is wrong (naming the field).</summary>
    public string? Problem()
    {
        if (!IsValidId(Id)) return "id: expected 1-128 characters of A-Z a-z 0-9 . _ : -";
        if (Prompt is null) return "prompt: missing";
        if (Prompt.Length > MaxTextLength) return $"prompt: longer than {MaxTextLength} characters";
        if (Completions is null || Completions.Count == 0) return "completions: at least one completion is required";
        if (Kind == FeedbackKind.Compare && Completions.Count != 2) return $"completions: a compare item needs exactly 2 completions, got {Completions.Count}";
        if (Kind == FeedbackKind.Score && Completions.Count > MaxScoreCompletions) return $"completions: a score item takes at most {MaxScoreCompletions} completions";
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < Completions.Count; i++)
        {
            var c = Completions[i];
            if (c is null) return $"completions[{i}]: missing";
            if (!IsValidId(c.Id)) return $"completions[{i}].id: expected 1-128 characters of A-Z a-z 0-9 . _ : -";
            if (!seen.Add(c.Id)) return $"completions[{i}].id: '{c.Id}' appears twice";
            if (c.Text is null) return $"completions[{i}].text: missing";
            if (c.Text.Length > MaxTextLength) return $"completions[{i}].text: longer than {MaxTextLength} characters";
        }
        if (RatersNeeded < 1 || RatersNeeded > MaxRatersNeeded) return $"raters: expected 1..{MaxRatersNeeded}, got {RatersNeeded}";
        if (TimeoutMs < 1000 || TimeoutMs > MaxTimeoutMs) return $"timeoutSeconds: expected 1..{MaxTimeoutMs / 1000}";
        if (string.IsNullOrWhiteSpace(Fallback) || Fallback.Length > 200) return "fallback: expected a short non-empty string";
        if (Origin is { Length: > 1000 }) return "origin: longer than 1000 characters";
        return null;
    }

    /// <summary>Same content (records compare lists by reference, so this compares element-wise).</summary>
    public bool SameAs(FeedbackItem other) =>
        Id == other.Id && Kind == other.Kind && Prompt == other.Prompt && RatersNeeded == other.RatersNeeded
        && TimeoutMs == other.TimeoutMs && Fallback == other.Fallback && Origin == other.Origin
        && Completions.SequenceEqual(other.Completions);
}

/// <summary>A stored rating: a <paramref name="Choice"/> (compare) or <paramref name="Scores"/> per completion id (score).</summary>
public sealed record RatingRecord(
    string RatingId,
    string TaskId,
    string Rater,
    string? Choice,
    IReadOnlyDictionary<string, int>? Scores,
    long AtMs)
{
    public bool SameAnswer(string? choice, IReadOnlyDictionary<string, int>? scores) =>
        Choice == choice
        && (Scores is null ? scores is null
            : scores is not null && Scores.Count == scores.Count && Scores.All(kv => scores.TryGetValue(kv.Key, out int v) && v == kv.Value));
}

// ---- commands and replies -------------------------------------------------------------------------------------

/// <summary>Adds items to the queue. Re-sending an item with the same id and content is a no-op; different content is rejected.</summary>
public sealed record EnqueueItems(IReadOnlyList<FeedbackItem> Items) : IFeedbackMessage;

/// <summary>Replied once every new item is durable.</summary>
public sealed record ItemsEnqueued(IReadOnlyList<string> Ids, int Added) : IFeedbackMessage;

public sealed record EnqueueRejected(string Reason) : IFeedbackMessage;

/// <summary>A rater asks for work: they get their current lease, a new lease, or <see cref="NoTask"/>.</summary>
public sealed record NextTask(string Rater) : IFeedbackMessage;

public sealed record TaskOffer(FeedbackItem Item, long LeaseExpiresAtMs) : IFeedbackMessage;

public sealed record NoTask : IFeedbackMessage
{
    public static readonly NoTask Instance = new();
}

public sealed record SubmitRating(string Rater, string TaskId, string? Choice, IReadOnlyDictionary<string, int>? Scores) : IFeedbackMessage;

/// <summary>Sent only after the rating is durable; <paramref name="Duplicate"/> for an identical resubmission.</summary>
public sealed record RatingAccepted(string RatingId, bool Duplicate) : IFeedbackMessage;

/// <summary>Why a rating was refused; the HTTP layer maps each code to one status.</summary>
public enum RejectionCode { Invalid, UnknownTask, NotLeased, Conflict, Closed }

public sealed record RatingRejected(RejectionCode Code, string Message) : IFeedbackMessage;

public sealed record GetStats : IFeedbackMessage
{
    public static readonly GetStats Instance = new();
}

public sealed record FeedbackStats(
    int Pending,
    int Rated,
    int TimedOut,
    int Ratings,
    IReadOnlyDictionary<string, int> PerRater,
    double? CompareAgreement,
    double? ScoreAgreement) : IFeedbackMessage;

/// <summary>A cheap per-rater count (the page asks after every rating; <see cref="GetStats"/> computes agreement).</summary>
public sealed record GetRaterStats(string Rater) : IFeedbackMessage;

public sealed record RaterStats(string Rater, int Rated, int Pending) : IFeedbackMessage;

/// <summary>The durable ratings of the given items so far (a producer polls this while it waits).</summary>
public sealed record GetItemRatings(IReadOnlyList<string> ItemIds) : IFeedbackMessage;

public sealed record ItemRatings(IReadOnlyList<RatingRecord> Ratings, IReadOnlyList<string> Closed) : IFeedbackMessage;

/// <summary>Every item and every durable rating, for export.</summary>
public sealed record GetExport : IFeedbackMessage
{
    public static readonly GetExport Instance = new();
}

public sealed record ExportData(IReadOnlyList<FeedbackItem> Items, IReadOnlyList<RatingRecord> Ratings, IReadOnlyDictionary<string, ResolutionOutcome> Resolved) : IFeedbackMessage;

/// <summary>
/// The reward pipeline's human source subscribes here: it first receives every resolution after
/// <paramref name="AfterSequence"/> (so a restarted consumer catches up from its own cursor), then each new one.
/// </summary>
public sealed record SubscribeResolutions(IActorRef Subscriber, long AfterSequence) : IFeedbackMessage;

/// <summary>An item is done: its ratings (possibly fewer than needed when it timed out) and its fallback marker.</summary>
public sealed record ItemResolved(
    long Sequence,
    string ItemId,
    string? Origin,
    ResolutionOutcome Outcome,
    string? Fallback,
    string Reason,
    IReadOnlyList<RatingRecord> Ratings,
    long AtMs) : IFeedbackMessage;

// ---- events (persisted) ---------------------------------------------------------------------------------------

public sealed record ItemEnqueued(FeedbackItem Item, long AtMs) : IFeedbackEvent;

public sealed record LeaseGranted(string ItemId, string Rater, long AtMs, long ExpiresAtMs) : IFeedbackEvent;

public sealed record RatingRecorded(RatingRecord Rating) : IFeedbackEvent;

public sealed record ItemClosed(string ItemId, ResolutionOutcome Outcome, string Reason, long AtMs) : IFeedbackEvent;

/// <summary>The feedback state at a sequence number, so recovery replays only the events after it.</summary>
public sealed record FeedbackSnapshot(
    IReadOnlyList<SnapshotItem> Items,
    IReadOnlyList<RatingRecord> Ratings,
    IReadOnlyList<ItemResolved> Resolutions,
    IReadOnlyDictionary<string, string> CurrentLeases) : IFeedbackMessage;

public sealed record SnapshotItem(FeedbackItem Item, long EnqueuedAtMs, IReadOnlyDictionary<string, long> Leases, IReadOnlyList<string> EverLeased);

/// <summary>Internal tick that expires leases and times out items.</summary>
public sealed record FeedbackTick : IFeedbackMessage
{
    public static readonly FeedbackTick Instance = new();
}
