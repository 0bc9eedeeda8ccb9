using Akka.Actor;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Feedback;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Feedback;

/// <summary>
/// hocon/human-ppo.conf end to end: the job hosts its rater endpoint (real Kestrel, SQLite journal), simulated
/// raters rate over HTTP by a rule the job never sees, and PPO on their ratings moves the policy toward it.
/// </summary>
public class HumanRewardJobTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Ppo_on_simulated_raters_ratings_moves_the_policy_toward_their_hidden_rule()
    {
        string dir = FeedbackTestNode.TempDirectory();
        string[] names = ["sim-a", "sim-b", "sim-c"];
        var tokens = names.ToDictionary(n => n, _ => RaterTokens.NewToken());
        string overrides = $$"""
            rlft.job.output-dir = "{{dir}}"
            rlft.job.device = cpu
            rlft.feedback.urls = ["http://127.0.0.1:0"]
            rlft.feedback.raters = [
              {{string.Join("\n  ", names.Select(n => RaterTokens.ConfigLine(n, tokens[n])))}}
            ]
            """;
        var job = JobSpec.Parse(RlftConfig.ParseText(overrides, "test-overrides")
            .WithFallback(RlftConfig.LoadFile(Path.Combine(RlftConfig.HoconDirectory, "human-ppo.conf"))));
        Assert.True(job.UsesHumanRatings);
        Assert.Equal(Path.Combine(dir, "human-ppo", "feedback.db"), job.Feedback!.Journal);

        await using var node = RlftNode.Create(new NodeOptions { Job = job, Roles = ["learner", "rollout", "reward", "feedback"] }, new TorchEngineFactory());
        await node.StartAsync(Ct);
        var url = Assert.Single(node.FeedbackUrls);
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        using var stopRaters = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var raters = names.Select(n => new SimulatedRater(new FeedbackClient(http, tokens[n]), HiddenRule.Positive)
            .RunAsync(int.MaxValue, TimeSpan.FromMilliseconds(20), ct: stopRaters.Token)).ToList();

        var finished = await node.Finished.WaitAsync(TimeSpan.FromMinutes(5), Ct);
        var stats = await node.System.ActorSelection("/user/feedback").Ask<FeedbackStats>(GetStats.Instance, TimeSpan.FromSeconds(10), Ct);
        stopRaters.Cancel();
        await Task.WhenAll(raters.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(20, finished.Summary["job/batches_trained"]);
        // Every trained completion was rated by a person-stand-in through the endpoint: 20 batches of 16.
        Assert.True(stats.Ratings >= 20 * 16, $"{stats.Ratings} ratings");
        Assert.All(names, n => Assert.True(stats.PerRater.GetValueOrDefault(n) > 0, $"{n} rated nothing"));
        // The raters like positive words; the held-out task reward is the share of positive sentiment words.
        double before = finished.Summary["1-ppo/before/eval/reward"], after = finished.Summary["1-ppo/after/eval/reward"];
        Assert.True(after > before + 0.2, $"held-out reward {before:F3} → {after:F3}");
        Assert.True(new FileInfo(job.Feedback.Journal).Length > 0);
    }
}
