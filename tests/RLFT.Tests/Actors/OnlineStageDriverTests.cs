using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Actors.Coordination;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Actors;

/// <summary>The online stage's state machine, driven directly: no actors, no cluster, no models.</summary>
public class OnlineStageDriverTests
{
    static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    sealed class Harness
    {
        public readonly JobSpec Job;
        public readonly OnlineStageDriver Driver;
        long _nextId = 1;
        public long PolicyVersion;
        public readonly List<long> Trained = new();

        public Harness(int steps, int lag, int maxRewardFailures = 3)
        {
            Job = JobHarness.Job($"{{ kind = ppo, data = \"builtin:prompts\", steps = {steps}, batch-size = 4 }}", extra: $"max-policy-lag = {lag}\n max-consecutive-reward-failures = {maxRewardFailures}");
            var data = OnlineStageData.Load(Job, Job.Stages[0]);
            Driver = new OnlineStageDriver(Job, Job.Stages[0], data, TimeSpan.FromMinutes(2));
            Driver.Start();
        }

        public GenerateRollouts? Work(string worker = "w") => Driver.NextWork(worker, PolicyVersion, () => _nextId++, T0);

        public RolloutBatch Batch(GenerateRollouts work, string worker = "w") =>
            new(work.BatchId, work.Stage, work.PolicyVersion, worker, work.Prompts.Select(p => new RolloutSample(p.Prompt, p.Answer, p.Group, "c", [1], [2], [-0.5f], true)).ToArray(), 0.1);

        public static ScoredBatch Scores(RolloutBatch b, bool dropAll = false) =>
            new(b.BatchId, b.Samples.Select(_ => 1f).ToArray(), ["task"], [b.Samples.Select(_ => 1f).ToArray()],
                dropAll ? [.. Enumerable.Range(0, b.Samples.Length)] : [], dropAll ? [.. b.Samples.Select(_ => "x: non-finite score (NaN)")] : [], 0.01);

        public void Train(TrainOn t)
        {
            Trained.Add(t.BatchId);
            PolicyVersion++;
            Driver.Trained(new PolicyUpdated(t.BatchId, t.Stage, 0, PolicyVersion, []));
        }
    }

    [Fact]
    public void Strictly_on_policy_one_batch_is_ahead_at_a_time()
    {
        var h = new Harness(steps: 3, lag: 0);
        var w = h.Work()!;
        Assert.Null(h.Work("other"));                                   // lag 0: nothing more until it trains
        Assert.True(h.Driver.Generated(h.Batch(w)));
        Assert.False(h.Driver.Generated(h.Batch(w)));                   // a duplicate answer is ignored
        Assert.True(h.Driver.Scored(Harness.Scores(h.Batch(w))).Ready);
        var next = h.Driver.NextToTrain(h.PolicyVersion)!;
        Assert.Null(h.Work("other"));
        h.Train(next);
        Assert.NotNull(h.Work("other"));
    }

    [Fact]
    public void A_batch_older_than_the_lag_is_dropped_and_replaced()
    {
        var h = new Harness(steps: 2, lag: 1);
        var a = h.Work("a")!; var b = h.Work("b")!;
        Assert.Equal(2, h.Driver.Issued);
        h.Driver.Generated(h.Batch(a)); h.Driver.Generated(h.Batch(b, "b"));
        h.Driver.Scored(Harness.Scores(h.Batch(a)));
        h.Train(h.Driver.NextToTrain(h.PolicyVersion)!);
        h.PolicyVersion += 5;                                           // the policy moved on meanwhile
        h.Driver.Scored(Harness.Scores(h.Batch(b, "b")));
        Assert.Null(h.Driver.NextToTrain(h.PolicyVersion));
        Assert.Equal(1, h.Driver.StaleDropped);
        Assert.Equal(1, h.Driver.Issued);                               // its place is free for a fresh batch
        Assert.NotNull(h.Work("a"));
    }

    [Fact]
    public void Failed_scoring_skips_the_batch_until_too_many_fail_in_a_row()
    {
        var h = new Harness(steps: 5, lag: 0, maxRewardFailures: 2);
        var first = h.Batch(h.Work()!);
        h.Driver.Generated(first);
        var skipped = h.Driver.Scored(Harness.Scores(first, dropAll: true));
        Assert.False(skipped.Ready);
        Assert.StartsWith($"batch {first.BatchId} skipped", skipped.Skipped);
        Assert.Equal(0, h.Driver.Issued);
        var second = h.Batch(h.Work()!);
        Assert.NotEqual(first.BatchId, second.BatchId);
        h.Driver.Generated(second);
        var fail = h.Driver.ScoringFailed(new ScoreFailed(second.BatchId, "the scorer is down"));
        Assert.Equal("scoring failed for 2 batches in a row (rlft.job.max-consecutive-reward-failures = 2); the last: the scorer is down", fail.Fail);
    }

    [Fact]
    public void A_batch_that_fails_to_generate_three_times_fails_the_stage()
    {
        var h = new Harness(steps: 2, lag: 0);
        var w = h.Work()!;
        Assert.Null(h.Driver.GenerationFailed(new RolloutFailed(w.BatchId, "w", "oom")));
        Assert.Equal(w.BatchId, h.Work()!.BatchId);                    // re-issued, the same batch
        Assert.Null(h.Driver.GenerationFailed(new RolloutFailed(w.BatchId, "w", "oom")));
        h.Work();
        Assert.Equal($"rollout batch {w.BatchId} failed 3 times: oom", h.Driver.GenerationFailed(new RolloutFailed(w.BatchId, "w", "oom")));
    }

    /// <summary>Random interleavings of workers asking, finishing, failing and leaving, scoring and training.</summary>
    [Property(MaxTest = 60)]
    public Property Any_interleaving_trains_every_step_once_and_keeps_at_most_lag_plus_one_ahead() =>
        Prop.ForAll(Gen.Choose(0, 2).ToArbitrary(), Gen.ListOf(Gen.Choose(0, 9)).ToArbitrary(), (lag, choices) =>
        {
            var h = new Harness(steps: 6, lag: lag);
            var held = new Dictionary<string, GenerateRollouts>();
            var generated = new Queue<RolloutBatch>();
            var scored = 0;
            string[] workers = ["a", "b", "c"];
            using var pick = choices.Concat(Enumerable.Repeat(-1, 4000)).GetEnumerator();
            for (int round = 0; round < 4000 && !h.Driver.Done; round++)
            {
                pick.MoveNext();
                int c = pick.Current >= 0 ? pick.Current : round % 10;
                string w = workers[round % workers.Length];
                switch (c)
                {
                    case 0 or 1 or 2 when !held.ContainsKey(w):
                        if (h.Work(w) is { } work) held[w] = work;
                        break;
                    case 3 or 4 when held.Remove(w, out var done):
                        if (h.Driver.Generated(h.Batch(done, w))) generated.Enqueue(h.Batch(done, w));
                        break;
                    case 5 when held.Remove(w, out var failed):
                        h.Driver.GenerationFailed(new RolloutFailed(failed.BatchId, w, "retry"));   // re-issued (a third failure would end the job in the shell)
                        break;
                    case 6 when held.Remove(w, out _):
                        h.Driver.WorkerLost(w);
                        break;
                    case 7 or 8 when generated.Count > 0:
                        if (h.Driver.Scored(Harness.Scores(generated.Dequeue())).Ready) scored++;
                        break;
                    default:
                        if (h.Driver.NextToTrain(h.PolicyVersion) is { } t) h.Train(t);
                        break;
                }
                Assert.True(h.Driver.Ahead <= lag + 1, $"{h.Driver.Ahead} batches ahead with lag {lag}");
            }
            return (h.Driver.Done && h.Trained.Count == 6 && h.Trained.Distinct().Count() == 6).Label($"trained {string.Join(",", h.Trained)}");
        });
}
