using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Collectives;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Collectives;

/// <summary>
/// The group engine's plumbing, with learners that only sum a number: every member runs each call on a thread of its
/// own and meets the others in the sums; the leader's result is returned; a member that fails releases the others
/// from the sums (no hang), is named, and stops the group.
/// </summary>
public class LearnerGroupEngineTests
{
    /// <summary>A learner whose step is one group sum of its rank + 1 (a member told to fail throws before it).</summary>
    sealed class Summing(LearnerGroup group, int failAt) : ILearnerEngine
    {
        public List<int> Threads { get; } = [];
        public long PolicyVersion { get; private set; }
        public long RewardModelVersion => -1;
        public bool ExportsAdapterOnly => false;
        public long AdapterBaseVersion => -1;

        public PolicyUpdated Train(StageSpec stage, TrainOn experience)
        {
            Threads.Add(Environment.CurrentManagedThreadId);
            if (++PolicyVersion == failAt) throw new InvalidDataException($"member {group.Rank} broke");
            double sum = group.Sum(group.Rank + 1.0)[0];
            return new PolicyUpdated(0, 0, 0, PolicyVersion, new() { ["sum"] = sum, ["rank"] = group.Rank });
        }

        public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken ct) => throw new NotSupportedException();
        public void BeginOnlineStage(StageSpec stage, bool resume = false) { }
        public byte[] ExportWeights(WeightKind kind) => [(byte)group.Rank];
        public EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts) => throw new NotSupportedException();
        public void SaveCheckpoint(string directory) { }
        public void Dispose() { }
    }

    static (LearnerGroupEngine Engine, List<Summing> Members) Group(int n, int failingRank = -1, int failAt = -1)
    {
        var job = JobHarness.Job(JobHarness.Sft, extra: $"learners = {n}");
        var members = new List<Summing>();
        var engine = new LearnerGroupEngine(job, g => { var m = new Summing(g, g.Rank == failingRank ? failAt : -1); members.Add(m); return m; });
        return (engine, members);
    }

    [Fact]
    public void Every_member_steps_on_its_own_thread_and_the_leaders_result_comes_back()
    {
        var (engine, members) = Group(3);
        using (engine)
        {
            for (int s = 0; s < 3; s++)
            {
                var updated = engine.Train(null!, null!);
                Assert.Equal((6.0, 0.0), (updated.Metrics["sum"], updated.Metrics["rank"]));
                Assert.Equal(3, updated.Metrics["learners/size"]);
            }
            Assert.Equal(3, engine.PolicyVersion);
            Assert.Equal(new byte[] { 0 }, engine.ExportWeights(WeightKind.Policy));
            Assert.Equal(3, members.SelectMany(m => m.Threads.Distinct()).Distinct().Count());
            Assert.All(members, m => Assert.Single(m.Threads.Distinct()));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task A_member_that_fails_releases_the_others_and_stops_the_group(int failing)
    {
        var (engine, _) = Group(3, failingRank: failing, failAt: 2);
        using (engine)
        {
            engine.Train(null!, null!);
            var ct = TestContext.Current.CancellationToken;
            var call = Task.Run(() => engine.Train(null!, null!), ct);
            Assert.True(await Task.WhenAny(call, Task.Delay(TimeSpan.FromSeconds(30), ct)) == call, "the group hung after a member failed");
            var e = await Assert.ThrowsAnyAsync<Exception>(() => call);
            Assert.Contains($"member {failing} broke", e.Message);
            if (failing > 0) Assert.Contains($"learner {failing} of the group of 3 failed", e.Message);
            var again = Assert.Throws<InvalidOperationException>(() => engine.Train(null!, null!));
            Assert.Contains("the learner group stopped after a member failed", again.Message);
            Assert.Equal(new byte[] { 0 }, engine.ExportWeights(WeightKind.Policy));   // the leader still exports
        }
    }

    [Fact]
    public void A_leader_waiting_for_replica_nodes_that_do_not_come_says_how_many_came_and_how_to_start_them()
    {
        var e = Assert.Throws<TimeoutException>(() => new Rlft.Actors.Runtime.LearnerRoster().WaitFor(2, TimeSpan.FromMilliseconds(50)));
        Assert.StartsWith("rlft.job.learners = 3: 0 of the 2 learner-replica node(s) the group needs joined within 0 s", e.Message);
        Assert.Contains("rlft node JOB --roles learner-replica --seed-nodes", e.Message);
    }
}
