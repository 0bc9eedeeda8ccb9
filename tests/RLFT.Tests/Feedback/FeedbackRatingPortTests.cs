using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Rlft.Actors.Feedback;
using Rlft.Reward;
using Rlft.Reward.Sources;

namespace Rlft.Tests.Feedback;

/// <summary>The reward pipeline's human source over the feedback actor: real Kestrel, real SQLite, raters over HTTP.</summary>
public class FeedbackRatingPortTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static FeedbackRatingPort Port(FeedbackTestNode node) =>
        new(_ => Task.FromResult(node.Services.GetRequiredService<IRequiredActor<FeedbackActor>>().ActorRef)) { PollInterval = TimeSpan.FromMilliseconds(50) };

    [Fact]
    public async Task A_human_source_scores_a_batch_with_the_mean_of_its_raters()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        var source = new HumanRatingSource("humans", Port(node), new HumanRatingOptions(MinRaters: 2, Timeout: TimeSpan.FromSeconds(60)));
        string[] texts = ["plain", "one tidy", "tidy tidy", "tidy tidy tidy"];
        var scoring = source.ScoreAsync(texts.Select(t => new RewardSample("Describe a room", t)).ToList(), Ct);

        using var raters = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var rating = new[] { "alice", "bob", "carol" }.Select(r => new SimulatedRater(node.Client(r), "tidy")
            .RunAsync(int.MaxValue, TimeSpan.FromMilliseconds(20), ct: raters.Token)).ToList();
        var scores = await scoring.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        raters.Cancel();
        await Task.WhenAll(rating.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

        Assert.Equal([1.0, 3.0, 5.0, 7.0], scores.Scores.Select(s => s.Value ?? double.NaN));
        // Two raters per item, as the source asked: never a third, though three raters were polling.
        var stats = await node.Services.GetRequiredService<IRequiredActor<FeedbackActor>>().ActorRef.Ask<FeedbackStats>(GetStats.Instance, TimeSpan.FromSeconds(5), Ct);
        Assert.Equal(8, stats.Ratings);
        Assert.Equal(4, stats.Rated);
    }

    [Fact]
    public async Task Completions_nobody_rated_in_time_fail_with_the_reason_and_their_items_close()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        var source = new HumanRatingSource("humans", Port(node), new HumanRatingOptions(MinRaters: 1, Timeout: TimeSpan.FromSeconds(1)));
        var scores = await source.ScoreAsync([new RewardSample("p", "tidy"), new RewardSample("p", "plain")], Ct);

        Assert.All(scores.Scores, s => Assert.Contains("timed out with 0 of 1 ratings", s.Failure));
        // The items closed when the source stopped waiting: nothing is left for raters to waste time on.
        var feedback = node.Services.GetRequiredService<IRequiredActor<FeedbackActor>>().ActorRef;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var stats = await feedback.Ask<FeedbackStats>(GetStats.Instance, TimeSpan.FromSeconds(5), Ct);
        while (stats.TimedOut < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, Ct);
            stats = await feedback.Ask<FeedbackStats>(GetStats.Instance, TimeSpan.FromSeconds(5), Ct);
        }
        Assert.Equal((0, 2), (stats.Pending, stats.TimedOut));
        Assert.Null(await node.Client("alice").NextAsync(Ct));
    }

    [Fact]
    public async Task Without_a_feedback_member_the_cluster_port_says_what_to_start()
    {
        using var system = ActorSystem.Create("rlft-port-test", "akka.actor.provider = cluster\nakka.remote.dot-netty.tcp.port = 0\nakka.remote.dot-netty.tcp.hostname = 127.0.0.1");
        var port = FeedbackRatingPort.InCluster(system, TimeSpan.FromMilliseconds(200));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => port.SubmitAsync([new RatingItem("i-1", "p", "c")], 1, TimeSpan.FromSeconds(5), Ct));
        Assert.Contains("no cluster member with the feedback role", e.Message);
        Assert.Contains("--roles feedback", e.Message);
    }
}
