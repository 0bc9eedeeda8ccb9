using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Tests.Cli;

namespace Rlft.Tests.Cluster;

/// <summary>
/// Rollout nodes as separate `rlft node` processes (the built executable), one of them killed with SIGKILL
/// mid-job; the learner (with the reward role) runs in the test process so the test can watch the ledger.
/// The job must complete with every batch trained exactly once.
/// </summary>
[Collection(ProcessTests.Name)]
public class ProcessKillTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;
    const int SftSteps = 15, PpoSteps = 12;

    /// <summary>A remote scorer the test can hold: requests wait while the gate is closed.</summary>
    sealed class GatedScorer : IAsyncDisposable
    {
        readonly WebApplication _app;
        volatile TaskCompletionSource _gate = Open();
        public int Requests;

        static TaskCompletionSource Open() { var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously); t.SetResult(); return t; }

        GatedScorer(WebApplication app) => _app = app;

        public string Url => _app.Urls.First() + "/score";
        public void Close() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        public void Release() => _gate.TrySetResult();

        public static async Task<GatedScorer> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var scorer = new GatedScorer(app);
            app.MapPost("/score", async (HttpContext ctx) =>
            {
                using var doc = await JsonDocument.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted);
                var samples = doc.RootElement.GetProperty("samples").EnumerateArray()
                    .Select(s => s.GetProperty("completion").GetString()!.Contains("great") ? 1.0 : 0.0).ToArray();
                Interlocked.Increment(ref scorer.Requests);
                await scorer._gate.Task.WaitAsync(ctx.RequestAborted);
                return Results.Json(new { scores = samples });
            });
            await app.StartAsync(Ct);
            return scorer;
        }

        public async ValueTask DisposeAsync() { Release(); await _app.DisposeAsync(); }
    }

    /// <summary>`rlft node --roles rollout` as its own process, on a port of its own (which names its worker).</summary>
    internal sealed class RolloutProcess(RlftProcess process, string workerId) : IDisposable
    {
        public Process Process => process.Process;
        public string WorkerId { get; } = workerId;
        public string Log => process.Log;

        public static async Task<RolloutProcess> StartAsync(string jobFile, string seed)
        {
            int port = JobHarness.FreePort();
            var node = await RlftProcess.StartAsync(["node", "--config", jobFile, "--roles", "rollout", "--port", port.ToString(), "--seed-nodes", seed], "up with roles", Ct);
            return new RolloutProcess(node, $"rollout@127.0.0.1:{port}#0");
        }

        public void Kill() => process.Kill();
        public void Dispose() => process.Dispose();
    }

    /// <summary>The real learner engine, remembering which batches it trained on.</summary>
    sealed class RecordingLearnerFactory : IEngineFactory
    {
        readonly TorchEngineFactory _inner = new();
        public ConcurrentQueue<long> Trained { get; } = new();

        public ILearnerEngine CreateLearner(JobSpec job, string? resumeFrom = null) => new Learner(_inner.CreateLearner(job, resumeFrom), Trained);
        public IRolloutEngine CreateRollout(JobSpec job, int index) => _inner.CreateRollout(job, index);
        public IRewardEngine CreateReward(JobSpec job, int index, Rlft.Reward.Sources.IHumanRatingPort? humans) => _inner.CreateReward(job, index, humans);

        sealed class Learner(ILearnerEngine inner, ConcurrentQueue<long> trained) : ILearnerEngine
        {
            public long PolicyVersion => inner.PolicyVersion;
            public long RewardModelVersion => inner.RewardModelVersion;
            public bool ExportsAdapterOnly => inner.ExportsAdapterOnly;
            public long AdapterBaseVersion => inner.AdapterBaseVersion;
            public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken ct) => inner.RunOfflineStage(stage, progress, ct);
            public void BeginOnlineStage(StageSpec stage, bool resume = false) => inner.BeginOnlineStage(stage, resume);
            public PolicyUpdated Train(StageSpec stage, TrainOn experience) { trained.Enqueue(experience.BatchId); return inner.Train(stage, experience); }
            public byte[] ExportWeights(WeightKind kind) => inner.ExportWeights(kind);
            public EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts) => inner.Evaluate(stage, label, prompts);
            public void SaveCheckpoint(string directory) => inner.SaveCheckpoint(directory);
            public void Dispose() => inner.Dispose();
        }
    }

    // Every node reads these from the job file. Quick detection; and no "down all when unstable": with three
    // processes on two busy cores (and other tests running), heartbeats come late often enough to look like
    // an unstable cluster.
    static string WriteJob(string dir, string scorerUrl)
    {
        string path = Path.Combine(dir, "job.conf");
        File.WriteAllText(path, JobHarness.JobText(
            $$"""
            { kind = sft, data = "builtin:sft", steps = {{SftSteps}}, batch-size = 16
              optimizer { lr = 2e-3 }
            }
            { kind = ppo, data = "builtin:prompts", eval-data = "builtin:eval-prompts", steps = {{PpoSteps}}, batch-size = 8
              sampling { max-new-tokens = 24 }
              ppo { epochs = 1 }
              rewards { components = [ { name = remote, source = http, url = "{{scorerUrl}}", timeout-seconds = 120 } ] }
            }
            """,
            extra: "max-policy-lag = 1",
            around: """
                akka.cluster {
                  failure-detector.acceptable-heartbeat-pause = 4s
                  split-brain-resolver { stable-after = 2s, down-all-when-unstable = off }
                }
                """));
        return path;
    }

    public enum KillPoint { Generation, Scoring, WeightFetch }

    [Theory]
    [InlineData(KillPoint.Generation)]
    [InlineData(KillPoint.Scoring)]
    [InlineData(KillPoint.WeightFetch)]
    public async Task A_rollout_process_killed_mid_job_loses_no_batch_and_none_is_trained_twice(KillPoint point)
    {
        string dir = Directory.CreateTempSubdirectory("rlft-kill").FullName;
        await using var scorer = await GatedScorer.StartAsync();
        string jobFile = WriteJob(dir, scorer.Url);
        var job = JobSpec.Load(jobFile);
        var (seedPort, seed) = JobHarness.NewSeed();
        var killedAt = DateTime.MinValue;
        var ppoSteps = new ConcurrentQueue<(DateTime At, int Step)>();
        var engines = new RecordingLearnerFactory();
        Action? onPpoStep = null;
        await using var learner = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "reward"], Port = seedPort, SeedNodes = [seed],
            // Not serialize-messages = on: Akka's cluster events (ReachabilityChanged) do not survive the round trip,
            // and a split-brain resolver that misses them takes wrong decisions. Our messages cross the wire here anyway.
            MinimumLogLevel = Microsoft.Extensions.Logging.LogLevel.Information,
            LoggerProvider = new TestOutputLogger(output),
            OnStatus = s => { if (s.StageKind == "Ppo") { ppoSteps.Enqueue((DateTime.UtcNow, s.Step)); onPpoStep?.Invoke(); } },
        }, engines);
        // Scoring waits until both rollout processes have asked for work, so neither can finish the job alone.
        scorer.Close();
        await learner.StartAsync(Ct);
        var started = await Task.WhenAll(RolloutProcess.StartAsync(jobFile, seed), RolloutProcess.StartAsync(jobFile, seed));
        using var a = started[0];
        using var b = started[1];

        JobStatus? last = null;
        async Task<JobStatus> Status()
        {
            for (int attempt = 0; ; attempt++)
            {
                var t0 = DateTime.UtcNow;
                try { return last = await learner.Coordinator.Ask<JobStatus>(QueryJobStatus.Instance, TimeSpan.FromSeconds(2), Ct); }
                catch (AskTimeoutException) when (attempt < 30 && !learner.Finished.IsCompleted) { output.WriteLine($"status query timed out, {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill"); }
            }
        }
        async Task<JobStatus> WaitFor(Func<JobStatus, bool> condition, string what)
        {
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while (DateTime.UtcNow < deadline)
            {
                if (learner.Finished.IsCompleted)
                    throw new InvalidOperationException($"the job ended while waiting for {what}: {learner.Finished.Result.Message}");
                var s = await Status();
                if (condition(s)) return s;
                await Task.Delay(20, Ct);
            }
            throw new TimeoutException($"waiting for {what}; node a: {a.Log}\nnode b: {b.Log}");
        }

        await WaitFor(s => s.RolloutWorkers is { } w && w.Contains(a.WorkerId) && w.Contains(b.WorkerId), "both rollout processes to ask for work");
        scorer.Release();
        // Both processes have done PPO work before the kill.
        await WaitFor(s => s.StageKind == "Ppo" && s.BatchesPerWorker.ContainsKey(a.WorkerId) && s.BatchesPerWorker.ContainsKey(b.WorkerId) && s.Step >= 1,
            "both rollout processes to finish a batch");
        long[] heldByA = [];
        long completedByA = 0;
        switch (point)
        {
            case KillPoint.Generation:
            {
                // a holds a batch it is generating.
                var s = await WaitFor(s => s.InFlightPerWorker?.ContainsKey(a.WorkerId) == true, "node a to hold a batch");
                a.Kill();
                killedAt = DateTime.UtcNow;
                heldByA = s.InFlightPerWorker![a.WorkerId];
                break;
            }
            case KillPoint.Scoring:
            {
                // a's next finished batch waits at the (held) scorer when a dies: it must be trained once, not regenerated.
                // Close the scorer while a holds a batch, so that batch is sure to reach scoring and wait there.
                long before;
                while (true)
                {
                    await WaitFor(s => s.InFlightPerWorker?.ContainsKey(a.WorkerId) == true, "node a to hold a batch");
                    scorer.Close();
                    var now = await Status();
                    if (now.InFlightPerWorker?.ContainsKey(a.WorkerId) == true) { before = now.BatchesPerWorker[a.WorkerId]; break; }
                    scorer.Release();
                }
                var s = await WaitFor(s => s.BatchesPerWorker[a.WorkerId] > before, "node a to hand a batch to scoring");
                a.Kill();
                killedAt = DateTime.UtcNow;
                completedByA = s.BatchesPerWorker[a.WorkerId];
                await Task.Delay(TimeSpan.FromSeconds(1), Ct);
                scorer.Release();
                break;
            }
            case KillPoint.WeightFetch:
            {
                // Right after an update is published, the rollout nodes fetch the new version before generating.
                var published = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                onPpoStep = () => { onPpoStep = null; a.Kill(); published.TrySetResult(); };
                await published.Task.WaitAsync(TimeSpan.FromMinutes(2), Ct);
                killedAt = DateTime.UtcNow;
                break;
            }
        }

        if (heldByA.Length > 0)
        {
            // Time from the kill to a's batch going out again (failure detection, then re-issue).
            await WaitFor(s => s.BatchesReissued >= heldByA.Length, "a's batch to be re-issued");
            output.WriteLine($"re-issued {heldByA.Length} batch(es) {(DateTime.UtcNow - killedAt).TotalSeconds:F2} s after SIGKILL");
        }

        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(4), Ct);
        var status = last!;   // the last status seen while the job ran; the summary has the final counts
        output.WriteLine($"{point}: {finished.Message}; trained {finished.Summary["job/batches_trained"]}, re-issued {finished.Summary["job/batches_reissued"]}, per worker (last seen) {string.Join(", ", status.BatchesPerWorker.Select(kv => $"{kv.Key}={kv.Value}"))}");
        Assert.True(finished.Succeeded, finished.Message);
        Assert.True(a.Process.HasExited);
        // Exactly once: the learner trained PpoSteps distinct batches (stale ones dropped before training are regenerated).
        Assert.Equal(PpoSteps, finished.Summary["job/batches_trained"]);
        Assert.Equal(PpoSteps, engines.Trained.Distinct().Count());
        Assert.Equal(PpoSteps, engines.Trained.Count);
        var metrics = JobHarness.TrainingSteps(job.RunDirectory).Skip(SftSteps).ToList();
        Assert.Equal(PpoSteps, metrics.Count);
        if (point == KillPoint.Generation) Assert.True(finished.Summary["job/batches_reissued"] >= 1, "the batch a held was re-issued");
        if (point == KillPoint.Scoring) Assert.Equal(completedByA, status.BatchesPerWorker[a.WorkerId]);
        Assert.True(status.BatchesPerWorker[b.WorkerId] > 0);
    }
}

/// <summary>Tests that start several processes run alone: on two cores, other tests beside them starve the heartbeats.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessTests
{
    public const string Name = "processes";
}

/// <summary>Node logs into the test's output, so a failure shows what the cluster did.</summary>
public sealed class TestOutputLogger(ITestOutputHelper output) : Microsoft.Extensions.Logging.ILoggerProvider, Microsoft.Extensions.Logging.ILogger
{
    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try { output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel}: {formatter(state, exception)}"); }
        catch (InvalidOperationException) { }   // the test has ended
    }

    public void Dispose() { }
}
