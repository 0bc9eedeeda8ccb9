using System.CommandLine;
using System.Globalization;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Akka.Actor;
using Rlft.Actors.Runtime;
using Rlft.Actors.Dashboard;

namespace Rlft.Host.Commands;

/// <summary>`rlft run JOB.conf`: every role in one process, a one-member cluster.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var job = new Argument<string?>("job") { Description = "Job file (HOCON), e.g. hocon/quickstart.conf (with --resume: none, the run's own)", Arity = ArgumentArity.ZeroOrOne };
        var set = new Option<string[]>("--set") { Description = "Override a job key: --set seed=3 (repeatable)", AllowMultipleArgumentsPerToken = false };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in RUN_DIR from its newest checkpoint (the job is the one the run started with)" };
        var plain = new Option<bool>("--plain-loop") { Description = "Run the stages as one plain in-process loop, without actors (the baseline the actor runtime is measured against)" };
        var otlp = OtlpExport.Option();
        var dashboard = new Option<string?>("--dashboard") { Description = "Serve a live page of the job (curves, samples, members) at this address, e.g. http://127.0.0.1:8090" };
        var force = new Option<bool>("--force") { Description = "Run even when the memory estimate says the job does not fit in the memory available here" };
        var command = new Command("run", "Run a job in one process (all roles).") { job, set, resume, plain, otlp, dashboard, force };
        command.SetAction(async (result, ct) =>
        {
            using var telemetry = OtlpExport.Start(result.GetValue(otlp), "rlft-run");
            return await Dispatch(result, ct);
        });
        return command;

        Task<int> Dispatch(ParseResult result, CancellationToken ct) => result.GetValue(plain) && result.GetValue(resume) is not null
            ? throw new CliException("run: --plain-loop does not resume runs; drop --plain-loop to continue with --resume")
            : result.GetValue(plain)
            ? Task.FromResult(RunPlain(result.GetValue(job) ?? throw new CliException("run --plain-loop: give the job file"), result.GetValue(set) ?? [], result.GetValue(force), result.InvocationConfiguration.Output))
            : RunAsync(result.GetValue(job), result.GetValue(set) ?? [], result.GetValue(resume), result.GetValue(dashboard), result.GetValue(force), result.InvocationConfiguration.Output, ct);
    }

    internal static void PrintSummary(TextWriter output, IReadOnlyDictionary<string, double> summary)
    {
        foreach (var (k, v) in summary.OrderBy(kv => kv.Key))
            output.WriteLine($"  {k,-44} {v.ToString("0.####", CultureInfo.InvariantCulture)}");
        var adaptation = AdaptationTable.From(summary);
        if (adaptation.Count == 0) return;
        output.WriteLine("  k-shot adaptation to the held-out tasks, from each adapt stage's starting weights (held-out loss, greedy reward):");
        foreach (var line in AdaptationTable.Lines(adaptation)) output.WriteLine("    " + line);
    }

    static int RunPlain(string jobPath, string[] overrides, bool force, TextWriter output)
    {
        var spec = JobSpec.LoadChecked(jobPath, overrides);
        var estimate = MemoryCheck.Check(spec, jobPath, force, output);
        output.WriteLine($"rlft: job '{spec.Name}' as a plain loop → {Path.GetFullPath(spec.RunDirectory)}");
        var started = DateTime.UtcNow;
        var display = new ProgressLine(output);
        var result = PlainLoop.Run(spec, new TorchEngineFactory(), (stage, step, total, m) =>
            display.Update(new JobStatus(0, stage, step, total, 0, false, 0, 0, 0, new Dictionary<string, long>(), new Dictionary<string, double>(m))));
        output.WriteLine($"rlft: finished in {(DateTime.UtcNow - started).TotalSeconds:F0}s ({result.OnlineSamples / Math.Max(1e-9, result.OnlineSeconds):F1} online samples/s)");
        PrintSummary(output, result.Summary);
        MemoryCheck.PrintPeak(output, estimate);
        return 0;
    }

    /// <summary>
    /// The job to run and, with --resume, the checkpoint to continue from. A fresh run records its job file
    /// (text and overrides) in run.json; a resumed one reads it back, so it continues the very same job.
    /// </summary>
    static (JobSpec Job, ResumePoint? Resume, JobRecord? Record) LoadJob(string? jobPath, string[] overrides, string? resume)
    {
        if (resume is null)
        {
            if (jobPath is null) throw new CliException("run: give a job file (e.g. hocon/quickstart.conf), or --resume RUN_DIR");
            jobPath = RlftConfig.ResolvePath(jobPath);
            // Everything the job reads and writes is checked before the run directory is touched.
            var spec = JobSpec.LoadChecked(jobPath, overrides);
            return (spec, null, JobRecord.Of(jobPath, overrides));
        }
        if (jobPath is not null)
            throw new CliException($"run: --resume continues the job recorded in {Path.Combine(resume, JobRecord.FileName)}; drop the job file argument");
        if (!Directory.Exists(resume)) throw new CliException($"--resume {resume}: no such run directory");
        var record = JobRecord.Read(resume);
        // The run directory is where it is now (it may have been moved, or named relative to another folder).
        string runDir = Path.GetFullPath(resume).TrimEnd(Path.DirectorySeparatorChar);
        var job = JobSpec.LoadTextChecked(record.JobText, record.JobFile, [.. record.Overrides, .. overrides],
            relocate: j => j with { OutputRoot = Path.GetDirectoryName(runDir)! });
        if (Path.GetFileName(runDir) != job.Name)
            throw new CliException($"--resume {resume}: the run directory's name is not the job's name '{job.Name}'");
        var point = ResumePoint.Latest(runDir);
        if (point.State.Stage >= job.Stages.Count)
            throw new CliException($"--resume {resume}: {Path.GetFileName(point.Directory)} continues stage {point.State.Stage}, but the job has {job.Stages.Count} stages");
        return (job, point, null);
    }

    /// <summary>The one-member cluster `rlft run` is: every role in this process (and the rater endpoint when the job has one).</summary>
    internal static RlftNode SingleNode(JobSpec spec, Action<JobStatus>? onStatus = null, ResumePoint? resume = null) => RlftNode.Create(new NodeOptions
    {
        Job = spec,
        Roles = spec.Feedback is null ? ["learner", "rollout", "reward"] : ["learner", "rollout", "reward", "feedback"],
        RolloutWorkers = spec.RolloutWorkers,
        OnStatus = onStatus,
        Resume = resume,
    }, new TorchEngineFactory());

    static async Task<int> RunAsync(string? jobPath, string[] overrides, string? resume, string? dashboardUrl, bool force, TextWriter output, CancellationToken ct)
    {
        if (dashboardUrl is not null) JobPage.CheckUrl(dashboardUrl);
        var (spec, resumePoint, record) = LoadJob(jobPath, overrides, resume);
        // Refused for memory before anything is written or loaded.
        var estimate = MemoryCheck.Check(spec, jobPath ?? "JOB.conf", force, output);
        record?.WriteTo(spec.RunDirectory);
        output.WriteLine($"rlft: job '{spec.Name}' → {Path.GetFullPath(spec.RunDirectory)} ({spec.Stages.Count} stages: {string.Join(" → ", spec.Stages.Select(s => s.Name))})");
        if (resumePoint is { State: var at })
            output.WriteLine($"rlft: resuming from {resumePoint.Directory}: stage {at.Stage} ({spec.Stages[at.Stage].Name}), {(at.Started ? $"step {at.Step}/{spec.Stages[at.Stage].Steps}" : "from its start")}, policy v{at.PolicyVersion}");
        var started = DateTime.UtcNow;
        var display = new ProgressLine(output);
        JobDashboard? page = null;
        await using var node = SingleNode(spec, s => { display.Update(s); page?.Update(s); }, resumePoint);
        await node.StartAsync(ct);
        await using var dashboard = page = dashboardUrl is null ? null : await JobPage.StartAsync(dashboardUrl, spec, node, output, ct);
        if (node.FeedbackUrls.Count > 0)
            output.WriteLine($"rlft: raters: open {string.Join(", ", node.FeedbackUrls)} (journal {spec.Feedback!.Journal})");
        JobFinished finished;
        try { finished = await node.Finished.WaitAsync(ct); }
        catch (OperationCanceledException)
        {
            output.WriteLine("rlft: interrupted; writing a checkpoint before leaving the cluster");
            try
            {
                var saved = await node.Coordinator
                    .Ask<CheckpointSaved>(new InterruptJob("Ctrl-C"), TimeSpan.FromSeconds(60));
                output.WriteLine($"rlft: checkpoint in {saved.Directory}");
            }
            catch (Exception e) when (e is Akka.Actor.AskTimeoutException or TaskCanceledException)
            {
                output.WriteLine("rlft: no checkpoint written (the learner did not finish its step within 60 s)");
            }
            return 130;
        }
        display.End();
        if (dashboard is not null) await dashboard.FinishAsync(finished);   // open pages fetch the final state
        var seconds = (DateTime.UtcNow - started).TotalSeconds;
        output.WriteLine($"rlft: {(finished.Succeeded ? "finished" : "FAILED")}: {finished.Message} in {seconds:F0}s");
        PrintSummary(output, finished.Summary);
        MemoryCheck.PrintPeak(output, estimate);
        return finished.Succeeded ? 0 : 1;
    }
}

/// <summary>One status line per step: stage, step, reward, KL, tokens/s.</summary>
internal sealed class ProgressLine(TextWriter output)
{
    readonly object _gate = new();

    public void Update(JobStatus s)
    {
        // About ten lines per stage, plus the last step.
        int every = Math.Max(1, s.TotalSteps / 10);
        if (s.Step % every != 0 && s.Step != s.TotalSteps) return;
        string Metric(string key, string label) => s.LastMetrics.TryGetValue(key, out var v) ? $" {label} {v.ToString("0.###", CultureInfo.InvariantCulture)}" : "";
        lock (_gate)
            output.WriteLine($"[{s.StageKind} {s.Step}/{s.TotalSteps}] v{s.PolicyVersion}"
                + Metric("loss/sft", "loss") + Metric("loss/reward_model", "loss") + Metric("rm/accuracy", "acc")
                + Metric("loss/dpo", "loss") + Metric("reward/mean", "reward") + Metric("objective/kl", "kl")
                + Metric("rollout/tokens_per_second", "tok/s"));
    }

    public void End() { }
}
