using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Rlft.Actors.Jobs;
using Rlft.Hosting;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Hosting;

/// <summary>Jobs run through <see cref="IRlftJobRunner"/> inside a program's host: their events, a C# reward, cancellation and resume.</summary>
public class JobRunnerTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static IHost NewHost()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        // Every message through the serializers, as the cluster tests run.
        builder.Services.AddRlft(o => o.AkkaHocon = JobHarness.TestHocon);
        return builder.Build();
    }

    static RlftJobBuilder TwoStages(string name, int ppoSteps, Func<Rlft.Reward.RewardSample, double> reward) => RlftJob.Create(name)
        .Seed(5).Device("cpu").OutputDir(Directory.CreateTempSubdirectory("rlft-api-run").FullName)
        .InitModel("gpt2", "tiny").Set("eval-prompts", 8).Set("max-policy-lag", 0)
        .RewardFunction("letters", reward)
        .Stage(RlftStage.Sft(RlftData.Builtin("sft"), steps: 3, batchSize: 8).LearningRate(2e-3))
        .Stage(RlftStage.Ppo(RlftData.Prompts(["Name a colour", "Describe a tree", "Say hello"]), ppoSteps, batchSize: 8)
            .MaxNewTokens(6).Set("ppo.epochs", 1).Reward("letters"));

    [Fact]
    public async Task The_event_stream_yields_each_stage_start_its_steps_its_end_and_then_the_job_end_in_order()
    {
        int calls = 0, asyncCalls = 0;
        var job = TwoStages("events", 3, s => { Interlocked.Increment(ref calls); return s.Completion.Count(char.IsLetter) / 10.0; })
            // An asynchronous function beside it, as a second component of the PPO stage's reward.
            .RewardFunction("later", async (s, ct) => { await Task.Yield(); Interlocked.Increment(ref asyncCalls); return s.Completion.Length / 20.0; })
            .Stage(RlftStage.Ppo(RlftData.Builtin("prompts"), 2, batchSize: 8).MaxNewTokens(6).Set("ppo.epochs", 1).Reward("letters").Reward("later", 0.5))
            .Build();
        using var host = NewHost();
        var runner = host.Services.GetRequiredService<IRlftJobRunner>();

        var events = new List<JobEvent>();
        await foreach (var e in runner.RunAsync(job, Ct)) events.Add(e);
        output.WriteLine(string.Join("\n", events));

        string Describe(JobEvent e) => e switch
        {
            StageStarted s => $"start {s.Stage} {s.Kind} {s.Steps}",
            StepCompleted s => $"step {s.Stage} {s.Step}/{s.Steps}",
            StageEnded s => $"end {s.Stage}",
            JobEnded j => $"job {j.Outcome}",
            _ => e.ToString(),
        };
        Assert.Equal(["start 0 Sft 3", "step 0 1/3", "step 0 2/3", "step 0 3/3", "end 0",
                      "start 1 Ppo 3", "step 1 1/3", "step 1 2/3", "step 1 3/3", "end 1",
                      "start 2 Ppo 2", "step 2 1/2", "step 2 2/2", "end 2", "job Succeeded"], events.Select(Describe));
        var ppoSteps = events.OfType<StepCompleted>().Where(s => s.Stage >= 1).ToList();
        Assert.All(ppoSteps, s => Assert.Contains("reward/mean", s.Metrics.Keys));
        Assert.True(calls >= 5 * 8, $"the C# reward was called {calls} times for 5 batches of 8");
        Assert.True(asyncCalls >= 2 * 8, $"the asynchronous reward was called {asyncCalls} times for 2 batches of 8");
        Assert.All(ppoSteps.Where(s => s.Stage == 2), s => Assert.Contains("reward/later", s.Metrics.Keys));
        var end = Assert.IsType<JobEnded>(events[^1]);
        Assert.True(File.Exists(Path.Combine(end.RunDirectory, "summary.json")));
        Assert.True(File.Exists(Path.Combine(end.RunDirectory, JobRecord.FileName)));
    }

    [Fact]
    public async Task Cancelling_mid_job_ends_it_within_a_bound_with_a_resume_point_that_a_resumed_run_continues_to_the_end()
    {
        Func<Rlft.Reward.RewardSample, double> reward = s => s.Completion.Count(char.IsLetter) / 10.0;
        var job = TwoStages("cancel", 12, reward).Build();
        using var host = NewHost();
        var runner = host.Services.GetRequiredService<IRlftJobRunner>();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var clock = new Stopwatch();
        JobEnded? end = null;
        await foreach (var e in runner.RunAsync(job, cancel.Token))
        {
            if (e is StepCompleted { Stage: 1, Step: 3 } && !clock.IsRunning) { clock.Start(); cancel.Cancel(); }
            if (e is JobEnded j) end = j;
        }
        clock.Stop();
        output.WriteLine($"{end} after {clock.Elapsed.TotalSeconds:F1} s");

        Assert.NotNull(end);
        Assert.Equal(JobOutcome.Cancelled, end.Outcome);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the job took {clock.Elapsed.TotalSeconds:F1} s to stop");
        Assert.False(File.Exists(Path.Combine(job.RunDirectory, "summary.json")), "the job finished before it was cancelled");
        Assert.NotNull(end.ResumeFrom);
        var point = ResumePoint.Latest(job.RunDirectory);
        Assert.Equal(Path.GetFullPath(end.ResumeFrom), Path.GetFullPath(point.Directory));
        Assert.Equal(1, point.State.Stage);
        Assert.InRange(point.State.Step, 3, 11);

        // The resumed run (the program gives its reward function again) continues after the checkpoint and finishes.
        var resumed = RlftJob.Resume(job.RunDirectory).RewardFunction("letters", reward).Build();
        var events = new List<JobEvent>();
        await foreach (var e in runner.RunAsync(resumed, Ct)) events.Add(e);
        Assert.True(events[^1] is JobEnded { Outcome: JobOutcome.Succeeded }, string.Join("\n", events));
        Assert.Equal(point.State.Step + 1, events.OfType<StepCompleted>().First().Step);
        Assert.Equal(12, events.OfType<StepCompleted>().Last().Step);
        Assert.DoesNotContain(events, e => e is StageStarted { Stage: 0 });
    }

    [Fact]
    public async Task A_hosted_job_runs_with_the_host_and_stops_it_when_done()
    {
        var job = TwoStages("hosted", 2, _ => 1.0).Build();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Services.AddRlft(o => o.AkkaHocon = JobHarness.TestHocon);
        var seen = new List<JobEvent>();
        builder.Services.AddRlftJob(_ => job, onEvent: e => { lock (seen) seen.Add(e); });
        using var host = builder.Build();
        var service = host.Services.GetRequiredService<RlftJobService>();

        await host.RunAsync(Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);   // returns because the job stopped the host

        var end = await service.Completion;
        Assert.True(end.Succeeded, end.Message);
        Assert.Same(end, seen[^1]);
    }
}
