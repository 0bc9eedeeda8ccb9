using Akka.Actor;
using Rlft.Actors.Configuration;
using Rlft.Actors.Feedback;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Cluster;

/// <summary>The feedback role on its own node: the reward node reaches the feedback actor across the cluster.</summary>
public class FeedbackRoleTests
{
    [Fact]
    public async Task A_reward_node_gets_its_human_scores_from_the_feedback_node_over_the_cluster()
    {
        var ct = TestContext.Current.CancellationToken;
        string token = RaterTokens.NewToken();
        var job = JobHarness.Job(
            string.Join("\n", JobHarness.Sft, JobHarness.Ppo(3, "components = [ { name = raters, source = human, timeout-seconds = 60 } ]")),
            around: $$"""
                rlft.feedback {
                  urls = ["http://127.0.0.1:0"]
                  tick-ms = 100
                  rate-per-second = 1000
                  rate-burst = 1000
                  raters = [ {{RaterTokens.ConfigLine("ann", token)}} ]
                }
                """);

        var (seedPort, seed) = JobHarness.NewSeed();
        await using var learner = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "rollout", "reward"], Port = seedPort, SeedNodes = [seed], ExtraHocon = JobHarness.TestHocon,
        }, new JobHarness.RecordingFactory());
        // Not serialize-messages = on here: Akka.Persistence.Sql's internal messages are not serializable
        // (see FeedbackTestNode); our messages to and from this node cross the wire anyway.
        await using var feedback = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["feedback"], SeedNodes = [seed],
            ExtraHocon = "akka.cluster.split-brain-resolver.stable-after = 3s",
        }, new JobHarness.RecordingFactory());
        await learner.StartAsync(ct);
        await feedback.StartAsync(ct);

        using var http = new HttpClient { BaseAddress = new Uri(Assert.Single(feedback.FeedbackUrls)) };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var rater = new SimulatedRater(new FeedbackClient(http, token), HiddenRule.Positive).RunAsync(int.MaxValue, TimeSpan.FromMilliseconds(20), ct: stop.Token);

        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(3), ct);
        var stats = await feedback.System.ActorSelection("/user/feedback").Ask<FeedbackStats>(GetStats.Instance, TimeSpan.FromSeconds(10), ct);
        stop.Cancel();
        await rater.ContinueWith(_ => { }, TaskScheduler.Default);

        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(3, finished.Summary["job/batches_trained"]);
        Assert.True(stats.Ratings >= 3 * 8, $"{stats.Ratings} ratings");
        Assert.Equal(stats.Ratings, stats.PerRater["ann"]);
        Assert.Empty(learner.FeedbackUrls);
    }
}
