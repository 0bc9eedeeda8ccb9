using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>A reward source's round trip: completions go to (simulated) raters over HTTP and their scores come back.</summary>
public class FeedbackPortTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Scores_from_simulated_raters_come_back_through_the_port_following_their_hidden_rule()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        var port = new FeedbackPort(node.Services.GetRequiredService<IRequiredActor<FeedbackActor>>().ActorRef, node.Options) { PollInterval = TimeSpan.FromMilliseconds(50) };
        var batch = new[] { "plain", "one tidy", "tidy tidy", "tidy tidy tidy" }.Select((c, i) => ($"b1-{i}", "Describe a room", c)).ToList();
        await port.EnqueueScoresAsync(batch, raters: 2, origin: "batch-1", Ct);

        var collecting = port.CollectAsync(batch.Select(b => b.Item1).ToList(), minRaters: 2, TimeSpan.FromSeconds(60), Ct);
        var raters = new[] { "alice", "bob" }.Select(r => new SimulatedRater(node.Client(r), "tidy").RunAsync(10, ct: Ct)).ToList();
        int[] stored = await Task.WhenAll(raters);
        Assert.Equal([4, 4], stored);
        var ratings = await collecting;

        Assert.Equal(8, ratings.Count);
        var mean = ratings.GroupBy(r => r.TaskId).ToDictionary(g => g.Key, g => g.Average(r => r.Scores!["a"]));
        Assert.Equal([1.0, 3.0, 5.0, 7.0], batch.Select(b => mean[b.Item1]));
    }

    [Fact]
    public async Task Collecting_returns_what_arrived_when_the_wait_ends()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        var port = new FeedbackPort(node.Services.GetRequiredService<IRequiredActor<FeedbackActor>>().ActorRef, node.Options) { PollInterval = TimeSpan.FromMilliseconds(50) };
        await port.EnqueueScoresAsync([("x-0", "p", "tidy"), ("x-1", "p", "plain")], raters: 3, origin: null, Ct);
        await new SimulatedRater(node.Client("alice"), "tidy").RunAsync(1, ct: Ct);
        var ratings = await port.CollectAsync(["x-0", "x-1"], minRaters: 3, TimeSpan.FromMilliseconds(300), Ct);
        var only = Assert.Single(ratings);
        Assert.Equal(("x-0", "alice", 3), (only.TaskId, only.Rater, only.Scores!["a"]));
    }
}
