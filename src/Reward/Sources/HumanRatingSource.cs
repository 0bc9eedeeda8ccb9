using Rlft.Reward.Ratings;

namespace Rlft.Reward.Sources;

/// <summary>A completion put in front of raters.</summary>
public sealed record RatingItem(string ItemId, string Prompt, string Completion);

/// <summary>
/// The port through which human ratings arrive; the feedback actor implements it, tests use
/// <see cref="InMemoryHumanRatingPort"/>. Scores are on the rater page's 1..7 scale.
/// </summary>
public interface IHumanRatingPort
{
    /// <summary>
    /// Queues the items for raters (kind "score"), each to be rated by <paramref name="ratersPerItem"/> distinct
    /// raters; after <paramref name="timeout"/> the caller stops waiting, so the port may close the items then.
    /// Item ids are the caller's and unique.
    /// </summary>
    Task SubmitAsync(IReadOnlyList<RatingItem> items, int ratersPerItem, TimeSpan timeout, CancellationToken ct);

    /// <summary>
    /// The ratings given so far to <paramref name="itemIds"/>, returned as soon as every item has
    /// <paramref name="minRaters"/> distinct raters or when <paramref name="timeout"/> elapses, whichever comes first.
    /// </summary>
    Task<IReadOnlyList<ScoreRating>> CollectAsync(IReadOnlyList<string> itemIds, int minRaters, TimeSpan timeout, CancellationToken ct);
}

/// <summary>How long to wait for people, and how to turn their votes into one score.</summary>
public sealed record HumanRatingOptions(int MinRaters = 1, TimeSpan Timeout = default, ScoreAggregate Aggregate = ScoreAggregate.Mean)
{
    public TimeSpan EffectiveTimeout => Timeout > TimeSpan.Zero ? Timeout : TimeSpan.FromMinutes(10);
}

/// <summary>
/// Scores a batch by asking raters through the port; an item with fewer than <c>MinRaters</c> distinct
/// raters when the wait ends fails with "timed out". One vote per rater per item (see <see cref="RatingAggregation"/>).
/// </summary>
public sealed class HumanRatingSource(string name, IHumanRatingPort port, HumanRatingOptions options) : IRewardSource
{
    public string Name { get; } = name;

    public async Task<SourceScores> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct)
    {
        string prefix = Guid.NewGuid().ToString("N")[..12];
        var items = batch.Select((s, i) => new RatingItem($"{prefix}-{i}", s.Prompt, s.Completion)).ToList();
        var ids = items.Select(it => it.ItemId).ToList();
        await port.SubmitAsync(items, options.MinRaters, options.EffectiveTimeout, ct).ConfigureAwait(false);
        var ratings = await port.CollectAsync(ids, options.MinRaters, options.EffectiveTimeout, ct).ConfigureAwait(false);
        var aggregated = RatingAggregation.Scores(ratings, options.Aggregate);
        var scores = ids.Select(id => aggregated.TryGetValue(id, out var a) && a.Raters >= options.MinRaters
            ? SampleScore.Ok(a.Score)
            : SampleScore.Fail($"timed out with {(aggregated.TryGetValue(id, out var p) ? p.Raters : 0)} of {options.MinRaters} ratings")).ToArray();
        return new SourceScores(Name, scores);
    }
}

/// <summary>An in-process rating port: tests (and single-process demos) call <see cref="Rate"/> as raters would.</summary>
public sealed class InMemoryHumanRatingPort : IHumanRatingPort
{
    readonly Lock gate = new();
    readonly List<RatingItem> pending = [];
    readonly List<ScoreRating> ratings = [];
    TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task SubmitAsync(IReadOnlyList<RatingItem> items, int ratersPerItem, TimeSpan timeout, CancellationToken ct)
    {
        lock (gate) pending.AddRange(items);
        Signal();
        return Task.CompletedTask;
    }

    /// <summary>Items submitted and not yet rated by anyone.</summary>
    public IReadOnlyList<RatingItem> Pending
    {
        get { lock (gate) return pending.Where(p => !ratings.Any(r => r.ItemId == p.ItemId)).ToList(); }
    }

    /// <summary>Waits until at least <paramref name="count"/> items await a first rating.</summary>
    public async Task<IReadOnlyList<RatingItem>> WaitForPendingAsync(int count, CancellationToken ct)
    {
        while (true)
        {
            Task next;
            lock (gate) next = changed.Task;
            var now = Pending;
            if (now.Count >= count) return now;
            await next.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    public void Rate(string itemId, string raterId, double score)
    {
        lock (gate)
        {
            if (!pending.Any(p => p.ItemId == itemId)) throw new ArgumentException($"unknown item '{itemId}'", nameof(itemId));
            ratings.Add(new ScoreRating(itemId, raterId, score));
        }
        Signal();
    }

    public async Task<IReadOnlyList<ScoreRating>> CollectAsync(IReadOnlyList<string> itemIds, int minRaters, TimeSpan timeout, CancellationToken ct)
    {
        var wanted = itemIds.ToHashSet();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        while (true)
        {
            Task next;
            List<ScoreRating> mine;
            lock (gate)
            {
                next = changed.Task;
                mine = ratings.Where(r => wanted.Contains(r.ItemId)).ToList();
            }
            bool complete = itemIds.All(id => mine.Where(r => r.ItemId == id).Select(r => r.RaterId).Distinct().Count() >= minRaters);
            if (complete) return mine;
            try { await next.WaitAsync(deadline.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                lock (gate) return ratings.Where(r => wanted.Contains(r.ItemId)).ToList();
            }
        }
    }

    void Signal()
    {
        TaskCompletionSource old;
        lock (gate)
        {
            old = changed;
            changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        old.TrySetResult();
    }
}
