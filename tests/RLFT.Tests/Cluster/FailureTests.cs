using System.Diagnostics;
using System.Text.Json;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Tests.Cli;

namespace Rlft.Tests.Cluster;

/// <summary>
/// Nothing hangs: whatever fails after the job has started — an engine that cannot be built, generation or scoring
/// that keeps failing, weights a replica cannot apply, a dataset gone by the time its stage starts — ends the job as
/// failed within seconds, with the reason in one line and in summary.json, and nothing that looks like a result.
/// </summary>
public class FailureTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The real engines, with one of them broken on purpose.</summary>
    sealed class BrokenFactory : IEngineFactory
    {
        readonly TorchEngineFactory _inner = new();
        public Func<ILearnerEngine>? Learner { get; init; }
        public Func<IRolloutEngine, IRolloutEngine>? Rollout { get; init; }
        public Func<IRewardEngine, IRewardEngine>? Reward { get; init; }

        public ILearnerEngine CreateLearner(JobSpec job, string? resumeFrom = null) => Learner?.Invoke() ?? _inner.CreateLearner(job, resumeFrom);
        public IRolloutEngine CreateRollout(JobSpec job, int index) => Rollout?.Invoke(_inner.CreateRollout(job, index)) ?? _inner.CreateRollout(job, index);
        public IRewardEngine CreateReward(JobSpec job, int index, Rlft.Reward.Sources.IHumanRatingPort? humans) =>
            Reward?.Invoke(_inner.CreateReward(job, index, humans)) ?? _inner.CreateReward(job, index, humans);
    }

    sealed class Rollout(IRolloutEngine inner, Func<int, bool>? failGenerate = null, bool failApply = false) : IRolloutEngine
    {
        int _calls;
        public long PolicyVersion => inner.PolicyVersion;
        public long BaseVersion => inner.BaseVersion;
        public void ApplyWeights(long version, byte[] blob)
        {
            if (failApply) throw new InvalidDataException("this replica cannot hold these weights");
            inner.ApplyWeights(version, blob);
        }
        public RolloutSample[] Generate(PromptItem[] prompts, SamplingSettings sampling, long seed) =>
            failGenerate?.Invoke(++_calls) == true ? throw new InvalidOperationException("generation broke") : inner.Generate(prompts, sampling, seed);
        public void Dispose() => inner.Dispose();
    }

    /// <summary>A reward engine that fails (throws, or drops every sample) on the calls <paramref name="fail"/> picks.</summary>
    sealed class Reward(IRewardEngine inner, Func<int, bool> fail, bool dropAll = false) : IRewardEngine
    {
        int _calls;
        public long RewardModelVersion => inner.RewardModelVersion;
        public bool NeedsRewardModel => inner.NeedsRewardModel;
        public void ApplyRewardModel(long version, byte[] blob) => inner.ApplyRewardModel(version, blob);
        public async Task<ScoredBatch> ScoreAsync(RolloutBatch batch, CancellationToken ct)
        {
            var scored = await inner.ScoreAsync(batch, ct);
            if (!fail(++_calls)) return scored;
            if (!dropAll) throw new InvalidOperationException("the scorer is down");
            int n = batch.Samples.Length;
            return scored with { Dropped = [.. Enumerable.Range(0, n)], DropReasons = [.. Enumerable.Repeat("remote: malformed reply: not JSON", n)] };
        }
        public void Dispose() => inner.Dispose();
    }

    async Task<(JobFinished Finished, double Seconds)> Run(JobSpec job, IEngineFactory engines)
    {
        var clock = Stopwatch.StartNew();
        await using var node = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "rollout", "reward"], ExtraHocon = JobHarness.TestHocon, LoggerProvider = new TestOutputLogger(output),
        }, engines);
        await node.StartAsync(Ct);
        var finished = await node.Finished.WaitAsync(TimeSpan.FromSeconds(90), Ct);
        output.WriteLine($"{(finished.Succeeded ? "finished" : "FAILED")} in {clock.Elapsed.TotalSeconds:F1}s: {finished.Message}");
        return (finished, clock.Elapsed.TotalSeconds);
    }

    static JsonElement Summary(JobSpec job) => JsonDocument.Parse(File.ReadAllText(Path.Combine(job.RunDirectory, RunRecorder.SummaryFile))).RootElement;

    static string PpoOnly(int steps = 4) => "{ kind = ppo, data = \"builtin:prompts\", steps = " + steps + ", batch-size = 4\n sampling { max-new-tokens = 6 }\n ppo { epochs = 1 }\n }";

    [Fact]
    public async Task A_learner_that_cannot_load_its_models_ends_the_job_with_the_reason()
    {
        var job = JobHarness.Job(JobHarness.Sft);
        var (finished, seconds) = await Run(job, new BrokenFactory { Learner = () => throw new InvalidDataException("model.safetensors: truncated") });
        Assert.False(finished.Succeeded);
        Assert.Equal("the learner failed: could not load the models: model.safetensors: truncated", finished.Message);
        Assert.True(seconds < 30, $"{seconds:F1}s");
        var summary = Summary(job);
        Assert.False(summary.GetProperty("succeeded").GetBoolean());
        Assert.Equal(finished.Message, summary.GetProperty("message").GetString());
        Assert.False(File.Exists(Path.Combine(job.RunDirectory, RunRecorder.CurveFile)), "a failed run with no curve drew an empty plot");
    }

    [Fact]
    public async Task Generation_that_keeps_failing_ends_the_job()
    {
        var job = JobHarness.Job(PpoOnly());
        var (finished, _) = await Run(job, new BrokenFactory { Rollout = r => new Rollout(r, failGenerate: _ => true) });
        Assert.False(finished.Succeeded);
        Assert.Matches(@"^rollout batch \d+ failed 3 times: generation broke$", finished.Message);
    }

    [Fact]
    public async Task Weights_a_replica_cannot_apply_end_the_job_instead_of_being_fetched_forever()
    {
        var job = JobHarness.Job(PpoOnly());
        var (finished, _) = await Run(job, new BrokenFactory { Rollout = r => new Rollout(r, failApply: true) });
        Assert.False(finished.Succeeded);
        Assert.Contains("could not be applied: this replica cannot hold these weights", finished.Message);
    }

    [Fact]
    public async Task A_scorer_that_stays_down_fails_the_job_after_the_allowed_run_of_failed_batches()
    {
        var job = JobHarness.Job(PpoOnly(), extra: "max-consecutive-reward-failures = 2");
        var (finished, _) = await Run(job, new BrokenFactory { Reward = r => new Reward(r, _ => true) });
        Assert.False(finished.Succeeded);
        Assert.Equal("scoring failed for 2 batches in a row (rlft.job.max-consecutive-reward-failures = 2); the last: the scorer is down", finished.Message);
    }

    [Fact]
    public async Task Batches_the_scorer_fails_now_and_then_are_skipped_and_generated_again()
    {
        // Calls 2 and 3 fail (two in a row, below the default of three), and call 5.
        var job = JobHarness.Job(PpoOnly(steps: 4), extra: "max-policy-lag = 0");
        var (finished, _) = await Run(job, new BrokenFactory { Reward = r => new Reward(r, call => call is 2 or 3 or 5, dropAll: false) });
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(4, finished.Summary["job/batches_trained"]);
        Assert.Equal(3, finished.Summary["job/reward_skipped_batches"]);
        var last = JobHarness.TrainingSteps(job.RunDirectory).Last();
        Assert.Equal(3, JsonDocument.Parse(last).RootElement.GetProperty("reward/skipped_batches").GetDouble());

        var dropping = JobHarness.Job(PpoOnly(steps: 2), extra: "max-policy-lag = 0");
        var (dropped, _) = await Run(dropping, new BrokenFactory { Reward = r => new Reward(r, call => call == 1, dropAll: true) });
        Assert.True(dropped.Succeeded, dropped.Message);
        Assert.Equal(1, dropped.Summary["job/reward_skipped_batches"]);
    }

    [Fact]
    public async Task A_dataset_gone_by_the_time_its_stage_starts_fails_the_process_with_the_file_named()
    {
        // Checked before the run, then deleted while stage 0 trains: the failure comes from the running job.
        string dir = Directory.CreateTempSubdirectory("rlft-gone").FullName;
        string data = Path.Combine(dir, "prefs.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 20).Select(i => $"{{\"prompt\": \"p{i}\", \"chosen\": \"good\", \"rejected\": \"bad\"}}"));
        string job = JobHarness.JobFile(string.Join("\n", JobHarness.Sft, $"{{ kind = dpo, data = \"{data}\", steps = 2, batch-size = 4 }}"));
        var clock = Stopwatch.StartNew();
        using var process = await RlftProcess.StartAsync(["run", job], "rlft: job", Ct);
        File.Delete(data);
        await process.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(90), Ct);
        output.WriteLine($"exit {process.Process.ExitCode} after {clock.Elapsed.TotalSeconds:F1}s\n{process.Log}");
        Assert.Equal(1, process.Process.ExitCode);
        Assert.Contains("FAILED: learner failed in stage 1: rlft.job.stages[1].data: dataset file not found: " + data, process.Log);
        Assert.DoesNotContain("   at ", process.Log);
        var spec = JobSpec.Load(job);
        var summary = Summary(spec);
        Assert.False(summary.GetProperty("succeeded").GetBoolean());
        Assert.Contains(data, summary.GetProperty("message").GetString());
        Assert.False(File.Exists(Path.Combine(spec.RunDirectory, RunRecorder.CurveFile)));
    }
}
