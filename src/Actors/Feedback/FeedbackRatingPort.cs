using Akka.Actor;
using Akka.Cluster;
using Rlft.Reward.Ratings;
using Rlft.Reward.Sources;

namespace Rlft.Actors.Feedback;

/// <summary>
/// The reward pipeline's human rating port over the feedback actor: a batch's completions become score items
/// (one completion each, rated 1..7), and the durable ratings come back as the pipeline's score ratings. Items
/// close in the feedback actor when the source stops waiting, so raters are not handed work nobody will read.
/// The feedback actor is found by <paramref name="locate"/>: in a cluster, on the member with the
/// <c>feedback</c> role (<see cref="InCluster"/>).
/// </summary>
internal sealed class FeedbackRatingPort(Func<CancellationToken, Task<IActorRef>> locate, string origin = "reward-pipeline") : IHumanRatingPort
{
    static readonly FeedbackOptions PortOptions = new() { Fallback = "drop" };
    IActorRef? _feedback;

    /// <summary>How often a waiting batch asks the feedback actor for its ratings.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Runs <paramref name="call"/> on the feedback actor, looking it up first when needed.</summary>
    async Task<T> WithPort<T>(Func<FeedbackPort, Task<T>> call, CancellationToken ct)
    {
        _feedback ??= await locate(ct).ConfigureAwait(false);
        try
        {
            return await call(new FeedbackPort(_feedback, PortOptions) { PollInterval = PollInterval }).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            _feedback = null; // the feedback node may have restarted elsewhere: look it up again next time
            throw;
        }
    }

    public Task SubmitAsync(IReadOnlyList<RatingItem> items, int ratersPerItem, TimeSpan timeout, CancellationToken ct) =>
        WithPort(async port =>
        {
            await port.EnqueueScoresAsync(items.Select(i => (i.ItemId, i.Prompt, i.Completion)).ToList(), ratersPerItem, origin, ct, timeout).ConfigureAwait(false);
            return true;
        }, ct);

    public Task<IReadOnlyList<ScoreRating>> CollectAsync(IReadOnlyList<string> itemIds, int minRaters, TimeSpan timeout, CancellationToken ct) =>
        WithPort<IReadOnlyList<ScoreRating>>(async port =>
        {
            var records = await port.CollectAsync(itemIds, minRaters, timeout, ct).ConfigureAwait(false);
            return records
                .Where(r => r.Scores is not null && r.Scores.ContainsKey(FeedbackPort.ScoreCompletionId))
                .Select(r => new ScoreRating(r.TaskId, r.Rater, r.Scores![FeedbackPort.ScoreCompletionId]))
                .ToList();
        }, ct);

    /// <summary>
    /// A port that finds the feedback actor (<c>/user/feedback</c>) on an Up member with the <c>feedback</c> role,
    /// waiting up to <paramref name="within"/> for one to join.
    /// </summary>
    public static FeedbackRatingPort InCluster(ActorSystem system, TimeSpan within) => new(async ct =>
    {
        var cluster = Cluster.Get(system);
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            foreach (var member in cluster.State.Members.Where(m => m.Status == MemberStatus.Up && m.HasRole("feedback")))
            {
                try
                {
                    return await system.ActorSelection(new RootActorPath(member.Address) / "user" / "feedback")
                        .ResolveOne(TimeSpan.FromSeconds(3), ct).ConfigureAwait(false);
                }
                catch (ActorNotFoundException) { }
            }
            if (DateTime.UtcNow >= deadline)
                throw new InvalidOperationException(
                    $"no cluster member with the feedback role answered within {within.TotalSeconds:0} s "
                    + "(add rlft.feedback to the job for `rlft run`, or start `rlft node --roles feedback`)");
            await Task.Delay(TimeSpan.FromMilliseconds(500), ct).ConfigureAwait(false);
        }
    });
}
