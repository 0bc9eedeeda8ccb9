using Akka.Actor;

namespace Rlft.Actors.Feedback;

/// <summary>
/// The feedback actor seen from a reward source that needs human scores for a batch: put completions in
/// front of raters, then wait until each has enough raters or the time is up. This is the shape of the reward
/// pipeline's human rating port (submit items; collect ratings with a minimum number of raters and a timeout),
/// so adapting it is a field-by-field mapping.
/// </summary>
internal sealed class FeedbackPort(IActorRef feedback, FeedbackOptions options)
{
    static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The completion id of a score item made by <see cref="EnqueueScoresAsync"/> (its only completion).</summary>
    public const string ScoreCompletionId = "a";

    /// <summary>How often <see cref="CollectAsync"/> asks for progress while it waits.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Queues one score item per completion, asking <paramref name="raters"/> raters each. Ids are the caller's;
    /// <paramref name="origin"/> lets subscribers to resolutions find the batch again. The items close after
    /// <paramref name="timeout"/> (at least a second; default: the node's item timeout).
    /// </summary>
    public async Task EnqueueScoresAsync(IReadOnlyList<(string ItemId, string Prompt, string Completion)> items, int raters, string? origin, CancellationToken ct, TimeSpan? timeout = null)
    {
        long timeoutMs = Math.Max(1000, (long)(timeout ?? options.ItemTimeout).TotalMilliseconds);
        var message = new EnqueueItems(items.Select(i => new FeedbackItem(i.ItemId, FeedbackKind.Score, i.Prompt, [new Completion(ScoreCompletionId, i.Completion)],
            raters, timeoutMs, options.Fallback, origin)).ToList());
        var answer = await feedback.Ask<object>(message, AskTimeout, ct).ConfigureAwait(false);
        if (answer is EnqueueRejected r) throw new ArgumentException($"feedback refused the items: {r.Reason}", nameof(items));
    }

    /// <summary>
    /// The ratings of <paramref name="itemIds"/>, once every item has <paramref name="minRaters"/> distinct raters
    /// or is closed, or when <paramref name="timeout"/> passes (then whatever arrived; the caller applies its fallback).
    /// </summary>
    public async Task<IReadOnlyList<RatingRecord>> CollectAsync(IReadOnlyList<string> itemIds, int minRaters, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            var now = await feedback.Ask<ItemRatings>(new GetItemRatings(itemIds), AskTimeout, ct).ConfigureAwait(false);
            var closed = now.Closed.ToHashSet(StringComparer.Ordinal);
            bool done = itemIds.All(id => closed.Contains(id) || now.Ratings.Count(r => r.TaskId == id) >= minRaters);
            if (done || DateTimeOffset.UtcNow >= deadline) return now.Ratings;
            var wait = deadline - DateTimeOffset.UtcNow;
            await Task.Delay(wait < PollInterval ? wait : PollInterval, ct).ConfigureAwait(false);
        }
    }
}
