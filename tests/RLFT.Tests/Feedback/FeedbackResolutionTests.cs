using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>What the reward pipeline's human source sees: resolutions pushed to a subscriber, and a catch-up from a cursor.</summary>
public class FeedbackResolutionTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Subscribers_receive_rated_and_timed_out_items_with_origin_and_fallback_and_can_catch_up()
    {
        // Undo off: a fully rated item resolves with its last rating (with an undo window it waits that out first).
        await using var node = await FeedbackTestNode.StartAsync(o => o with { Fallback = "source:reward-model", UndoWindow = TimeSpan.Zero });
        var system = node.Services.GetRequiredService<ActorSystem>();
        var feedback = node.Services.GetRequiredService<IRequiredActor<FeedbackActor>>().ActorRef;
        var inbox = Inbox.Create(system);
        feedback.Tell(new SubscribeResolutions(inbox.Receiver, 0));

        // Enqueued through the actor protocol, as the human reward source would.
        var enqueued = await feedback.Ask<object>(new EnqueueItems([
            new FeedbackItem("r1", FeedbackKind.Score, "p", [new("a", "x")], 1, 60_000, "source:reward-model", "batch-3/0"),
            new FeedbackItem("t1", FeedbackKind.Score, "p", [new("a", "y")], 2, 1_000, "source:reward-model", "batch-3/1"),
        ]), TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(2, Assert.IsType<ItemsEnqueued>(enqueued).Added);

        var alice = node.Client("alice");
        Assert.Equal("r1", (await alice.NextAsync(Ct))!.TaskId);
        await alice.RateAsync("r1", null, new Dictionary<string, int> { ["a"] = 6 }, Ct);

        // The timeout may fire before or after the rating lands: collect both, in whatever order.
        var got = new Dictionary<string, ItemResolved>();
        for (int i = 0; i < 2; i++)
        {
            var r = Assert.IsType<ItemResolved>(await inbox.ReceiveAsync(TimeSpan.FromSeconds(10)));
            got[r.ItemId] = r;
        }
        var rated = got["r1"];
        Assert.Equal(("batch-3/0", ResolutionOutcome.Rated, (string?)null), (rated.Origin, rated.Outcome, rated.Fallback));
        Assert.Equal(6, Assert.Single(rated.Ratings).Scores!["a"]);
        var timedOut = got["t1"];
        Assert.Equal(("batch-3/1", ResolutionOutcome.TimedOut, "source:reward-model"), (timedOut.Origin, timedOut.Outcome, timedOut.Fallback));
        Assert.Empty(timedOut.Ratings);
        Assert.Equal([1L, 2L], got.Values.Select(r => r.Sequence).Order());

        // A consumer that restarts resubscribes from its last sequence number and gets only what it missed.
        var late = Inbox.Create(system);
        var first = got.Values.MinBy(r => r.Sequence)!;
        feedback.Tell(new SubscribeResolutions(late.Receiver, first.Sequence));
        Assert.Equal(got.Values.MaxBy(r => r.Sequence)!.ItemId, Assert.IsType<ItemResolved>(await late.ReceiveAsync(TimeSpan.FromSeconds(10))).ItemId);
    }

    [Fact]
    public async Task With_an_undo_window_a_rated_item_resolves_once_the_window_has_passed_with_the_answer_that_stood()
    {
        await using var node = await FeedbackTestNode.StartAsync(o => o with { UndoWindow = TimeSpan.FromSeconds(1) });
        var system = node.Services.GetRequiredService<ActorSystem>();
        var feedback = node.Services.GetRequiredService<IRequiredActor<FeedbackActor>>().ActorRef;
        var inbox = Inbox.Create(system);
        feedback.Tell(new SubscribeResolutions(inbox.Receiver, 0));
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y")], Ct);
        var alice = node.Client("alice");
        await alice.NextAsync(Ct);
        var first = await alice.RateAsync("c1", "a", null, Ct);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await alice.UndoAsync(first.RatingId, Ct)).Status);
        var second = await alice.RateAsync("c1", "b", null, Ct);
        var started = DateTime.UtcNow;
        var resolved = Assert.IsType<ItemResolved>(await inbox.ReceiveAsync(TimeSpan.FromSeconds(10)));
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(500), "resolved before the undo window had passed");
        Assert.Equal(second.RatingId, Assert.Single(resolved.Ratings).RatingId);
        Assert.Equal(System.Net.HttpStatusCode.Conflict, (await alice.UndoAsync(ct: Ct)).Status);
    }
}
