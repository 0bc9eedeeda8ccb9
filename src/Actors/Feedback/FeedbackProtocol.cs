using System.Text.RegularExpressions;
using Akka.Actor;

namespace Rlft.Actors.Feedback;

/// <summary>Marker for every feedback message and event: binds them to <see cref="FeedbackSerializer"/> in HOCON.</summary>
internal interface IFeedbackMessage;

/// <summary>Marker for the events the feedback actor persists (a subset of the messages).</summary>
internal interface IFeedbackEvent : IFeedbackMessage;

/// <summary>compare: a pair of completions for one prompt, the rater picks one. score: each completion gets 1..7.</summary>
internal enum FeedbackKind { Compare, Score }

/// <summary>
/// How an item ended: enough ratings arrived, its timeout passed first, or it was discarded as broken (by the admin,
/// or by <c>close-after-flags</c> raters); the fallback applies to the last two.
/// </summary>
internal enum ResolutionOutcome { Rated, TimedOut, Discarded }

internal sealed record Completion(string Id, string Text);

/// <summary>
/// One unit of human work. <paramref name="Origin"/> is opaque to the feedback actor: the producer (the reward
/// pipeline's human source, a preference-collection job, the admin API) uses it to find its batch and sample again.
/// <paramref name="Fallback"/> says what the consumer should do when the item times out (e.g. "drop" or
/// "source:reward-model"); the feedback actor only records it and marks the resolution.
/// The init-only properties came with event schema 2 (<see cref="FeedbackSchema"/>): a conversation as context, the
/// guideline the rater reads, which pair verdicts and answer parts are asked for, and score criteria.
/// </summary>
internal sealed record FeedbackItem(
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
    public const int MaxMessages = 100;
    public const int MaxCriteria = 8;
    static readonly Regex IdPattern = new("^[A-Za-z0-9._:-]{1,128}$", RegexOptions.CultureInvariant);

    public static bool IsValidId(string? id) => id is not null && IdPattern.IsMatch(id);

    /// <summary>The conversation so far (TRL's <c>{"role","content"}</c>); the completions are the next assistant turn.</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    /// <summary>The guideline to show (a name); null: the one named after the kind ("compare"/"score"), else "default".</summary>
    public string? Guideline { get; init; }
    /// <summary>Pair answers besides A or B: "tie", "both-bad" (compare items only).</summary>
    public IReadOnlyList<string> Verdicts { get; init; } = [];
    /// <summary>Whether a pair's choice may carry a strength, "slightly" or "much" (compare items only).</summary>
    public bool AskStrength { get; init; }
    public RationalePolicy Rationale { get; init; } = RationalePolicy.Optional;
    /// <summary>Named criteria each scored 1..7 per completion (score items only); empty: one overall score.</summary>
    public IReadOnlyList<string> Criteria { get; init; } = [];

    /// <summary>Null when the item is well formed, otherwise what is wrong (naming the field).</summary>
    public string? Problem()
    {
        if (!IsValidId(Id)) return "id: expected 1-128 characters of A-Z a-z 0-9 . _ : -";
        if (Prompt is null) return Messages is null ? "prompt: missing (give a prompt or messages)" : "prompt: missing";
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
        return ItemParts.Problem(this);
    }

    /// <summary>The guideline name this item is rated under when <paramref name="exists"/> says which names are set.</summary>
    public string? GuidelineName(Func<string, bool> exists)
    {
        if (Guideline is not null) return exists(Guideline) ? Guideline : exists("default") ? "default" : null;
        string kind = Kind == FeedbackKind.Compare ? "compare" : "score";
        return exists(kind) ? kind : exists("default") ? "default" : null;
    }

    /// <summary>Same content (records compare lists by reference, so this compares element-wise).</summary>
    public bool SameAs(FeedbackItem other) =>
        Id == other.Id && Kind == other.Kind && Prompt == other.Prompt && RatersNeeded == other.RatersNeeded
        && TimeoutMs == other.TimeoutMs && Fallback == other.Fallback && Origin == other.Origin
        && Completions.SequenceEqual(other.Completions)
        && (Messages ?? []).SequenceEqual(other.Messages ?? []) && (Messages is null) == (other.Messages is null)
        && Guideline == other.Guideline && Verdicts.SequenceEqual(other.Verdicts) && AskStrength == other.AskStrength
        && Rationale == other.Rationale && Criteria.SequenceEqual(other.Criteria);
}

/// <summary>
/// A stored rating: a <paramref name="Choice"/> (compare) or <paramref name="Scores"/> per completion id (score). Since
/// event schema 2 a pair may instead carry a <see cref="Verdict"/> ("tie", "both-bad"), a choice a
/// <see cref="Strength"/>, a score item per-criterion <see cref="Criteria"/> (then <paramref name="Scores"/> is null),
/// any rating a <see cref="Rationale"/>; and each records the guideline version the item was handed out under.
/// </summary>
internal sealed record RatingRecord(
    string RatingId,
    string TaskId,
    string Rater,
    string? Choice,
    IReadOnlyDictionary<string, int>? Scores,
    long AtMs)
{
    public string? Verdict { get; init; }
    public string? Strength { get; init; }
    public string? Rationale { get; init; }
    /// <summary>completion id → criterion → 1..7.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>>? Criteria { get; init; }
    public GuidelineRef? Guideline { get; init; }

    public bool SameAnswer(SubmitRating s) =>
        Choice == s.Choice && Verdict == s.Verdict && Strength == s.Strength && Rationale == s.Rationale
        && SameScores(Scores, s.Scores)
        && (Criteria is null ? s.Criteria is null
            : s.Criteria is not null && Criteria.Count == s.Criteria.Count
              && Criteria.All(kv => s.Criteria.TryGetValue(kv.Key, out var other) && SameScores(kv.Value, other)));

    static bool SameScores(IReadOnlyDictionary<string, int>? a, IReadOnlyDictionary<string, int>? b) =>
        a is null ? b is null : b is not null && a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out int v) && v == kv.Value);
}

// ---- commands and replies -------------------------------------------------------------------------------------

/// <summary>Adds items to the queue. Re-sending an item with the same id and content is a no-op; different content is rejected.</summary>
internal sealed record EnqueueItems(IReadOnlyList<FeedbackItem> Items) : IFeedbackMessage;

/// <summary>Replied once every new item is durable.</summary>
internal sealed record ItemsEnqueued(IReadOnlyList<string> Ids, int Added) : IFeedbackMessage;

internal sealed record EnqueueRejected(string Reason) : IFeedbackMessage;

/// <summary>A rater asks for work: they get their current lease, a new lease, or <see cref="NoTask"/>.</summary>
internal sealed record NextTask(string Rater) : IFeedbackMessage;

/// <summary>A leased item and the guideline it is rated under (null: none is set).</summary>
internal sealed record TaskOffer(FeedbackItem Item, long LeaseExpiresAtMs) : IFeedbackMessage
{
    public GuidelineVersion? Guideline { get; init; }
}

internal sealed record NoTask : IFeedbackMessage
{
    public static readonly NoTask Instance = new();
}

internal sealed record SubmitRating(string Rater, string TaskId, string? Choice, IReadOnlyDictionary<string, int>? Scores) : IFeedbackMessage
{
    public string? Verdict { get; init; }
    public string? Strength { get; init; }
    public string? Rationale { get; init; }
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>>? Criteria { get; init; }
}

/// <summary>Sent only after the rating is durable; <paramref name="Duplicate"/> for an identical resubmission.</summary>
internal sealed record RatingAccepted(string RatingId, bool Duplicate) : IFeedbackMessage;

/// <summary>Why a rating was refused; the HTTP layer maps each code to one status.</summary>
internal enum RejectionCode { Invalid, UnknownTask, NotLeased, Conflict, Closed, UnknownRater }

internal sealed record RatingRejected(RejectionCode Code, string Message) : IFeedbackMessage;

internal sealed record GetStats : IFeedbackMessage
{
    public static readonly GetStats Instance = new();
}

internal sealed record FeedbackStats(
    int Pending,
    int Rated,
    int TimedOut,
    int Ratings,
    IReadOnlyDictionary<string, int> PerRater,
    double? CompareAgreement,
    double? ScoreAgreement) : IFeedbackMessage;

/// <summary>A cheap per-rater count (the page asks after every rating; <see cref="GetStats"/> computes agreement).</summary>
internal sealed record GetRaterStats(string Rater) : IFeedbackMessage;

internal sealed record RaterStats(string Rater, int Rated, int Pending) : IFeedbackMessage;

/// <summary>The durable ratings of the given items so far (a producer polls this while it waits).</summary>
internal sealed record GetItemRatings(IReadOnlyList<string> ItemIds) : IFeedbackMessage;

internal sealed record ItemRatings(IReadOnlyList<RatingRecord> Ratings, IReadOnlyList<string> Closed) : IFeedbackMessage;

/// <summary>Every item and every durable rating, for export.</summary>
internal sealed record GetExport : IFeedbackMessage
{
    public static readonly GetExport Instance = new();
}

/// <summary>Every item, every standing rating, how items ended; and the undone ratings and set-aside items (schema 2).</summary>
internal sealed record ExportData(IReadOnlyList<FeedbackItem> Items, IReadOnlyList<RatingRecord> Ratings, IReadOnlyDictionary<string, ResolutionOutcome> Resolved) : IFeedbackMessage
{
    public IReadOnlyList<RatingRecord> Undone { get; init; } = [];
    public IReadOnlyList<ItemSetAside> SetAside { get; init; } = [];
    public IReadOnlyList<GuidelineVersion> Guidelines { get; init; } = [];
}

/// <summary>
/// The reward pipeline's human source subscribes here: it first receives every resolution after
/// <paramref name="AfterSequence"/> (so a restarted consumer catches up from its own cursor), then each new one.
/// </summary>
internal sealed record SubscribeResolutions(IActorRef Subscriber, long AfterSequence) : IFeedbackMessage;

/// <summary>An item is done: its ratings (possibly fewer than needed when it timed out) and its fallback marker.</summary>
internal sealed record ItemResolved(
    long Sequence,
    string ItemId,
    string? Origin,
    ResolutionOutcome Outcome,
    string? Fallback,
    string Reason,
    IReadOnlyList<RatingRecord> Ratings,
    long AtMs) : IFeedbackMessage;

// ---- events (persisted) ---------------------------------------------------------------------------------------

internal sealed record ItemEnqueued(FeedbackItem Item, long AtMs) : IFeedbackEvent;

/// <summary><see cref="Guideline"/> (schema 2): the guideline version in force when the item was handed out.</summary>
internal sealed record LeaseGranted(string ItemId, string Rater, long AtMs, long ExpiresAtMs) : IFeedbackEvent
{
    public GuidelineRef? Guideline { get; init; }
}

internal sealed record RatingRecorded(RatingRecord Rating) : IFeedbackEvent;

internal sealed record ItemClosed(string ItemId, ResolutionOutcome Outcome, string Reason, long AtMs) : IFeedbackEvent;

/// <summary>The feedback state at a sequence number, so recovery replays only the events after it.</summary>
internal sealed record FeedbackSnapshot(
    IReadOnlyList<SnapshotItem> Items,
    IReadOnlyList<RatingRecord> Ratings,
    IReadOnlyList<ItemResolved> Resolutions,
    IReadOnlyDictionary<string, string> CurrentLeases) : IFeedbackMessage
{
    // Schema 2: what the workflow events added to the state (empty when a schema-1 snapshot is read).
    public IReadOnlyList<ItemSetAside> SetAside { get; init; } = [];
    public IReadOnlyList<RatingRecord> Undone { get; init; } = [];
    public IReadOnlyList<RatingUndone> Undos { get; init; } = [];
    public IReadOnlyDictionary<string, string> LastRating { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<GuidelineSet> Guidelines { get; init; } = [];
    public IReadOnlyList<RaterState> Raters { get; init; } = [];
}

internal sealed record SnapshotItem(FeedbackItem Item, long EnqueuedAtMs, IReadOnlyDictionary<string, long> Leases, IReadOnlyList<string> EverLeased)
{
    /// <summary>Schema 2: rater → the guideline their lease was granted under.</summary>
    public IReadOnlyDictionary<string, GuidelineRef> LeaseGuidelines { get; init; } = new Dictionary<string, GuidelineRef>();
}

/// <summary>Internal tick that expires leases and times out items.</summary>
internal sealed record FeedbackTick : IFeedbackMessage
{
    public static readonly FeedbackTick Instance = new();
}
