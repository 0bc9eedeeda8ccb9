using System.CommandLine;
using System.Globalization;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Akka.Actor;
using Rlft.Actors.Runtime;

namespace Rlft.Host.Commands;

/// <summary>`rlft run JOB.conf`: every role in one process, a one-member cluster.</summary>
public static class RunCommand
{
    public static Command Create()
    {
        var job = new Argument<string>("job") { Description = "Job file (HOCON), e.g. hocon/quickstart.conf" };
        var set = new Option<string[]>("--set") { Description = "Override a job key: --set seed=3 (repeatable)", AllowMultipleArgumentsPerToken = false };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in RUN_DIR from its last checkpoint" };
        var plain = new Option<bool>("--plain-loop") { Description = "Run the stages as one plain in-process loop, without actors (the baseline the actor runtime is measured against)" };
        var command = new Command("run", "Run a job in one process (all roles).") { job, set, resume, plain };
        command.SetAction((result, ct) => result.GetValue(plain)
            ? Task.FromResult(RunPlain(result.GetValue(job)!, result.GetValue(set) ?? [], result.InvocationConfiguration.Output))
            : RunAsync(result.GetValue(job)!, result.GetValue(set) ?? [], result.GetValue(resume), result.InvocationConfiguration.Output, ct));
        return command;
    }

    static void PrintSummary(TextWriter output, IReadOnlyDictionary<string, double> summary)
    {
        foreach (var (k, v) in summary.OrderBy(kv => kv.Key))
            output.WriteLine($"  {k,-44} {v.ToString("0.####", CultureInfo.InvariantCulture)}");
    }

    static int RunPlain(string jobPath, string[] overrides, TextWriter output)
    {
        var spec = JobSpec.Load(jobPath, overrides);
        output.WriteLine($"rlft: job '{spec.Name}' as a plain loop → {Path.GetFullPath(spec.RunDirectory)}");
        var started = DateTime.UtcNow;
        var display = new ProgressLine(output);
        var result = PlainLoop.Run(spec, new TorchEngineFactory(), (stage, step, total, m) =>
            display.Update(new JobStatus(0, stage, step, total, 0, false, 0, 0, 0, new Dictionary<string, long>(), new Dictionary<string, double>(m))));
        output.WriteLine($"rlft: finished in {(DateTime.UtcNow - started).TotalSeconds:F0}s ({result.OnlineSamples / Math.Max(1e-9, result.OnlineSeconds):F1} online samples/s)");
        PrintSummary(output, result.Summary);
        return 0;
    }

    static async Task<int> RunAsync(string jobPath, string[] overrides, string? resume, TextWriter output, CancellationToken ct)
    {
        var spec = JobSpec.Load(jobPath, overrides);
        if (resume is not null)
            throw new CliException($"--resume {resume}: resuming a run is not supported yet");
        Directory.CreateDirectory(spec.RunDirectory);
        output.WriteLine($"rlft: job '{spec.Name}' → {Path.GetFullPath(spec.RunDirectory)} ({spec.Stages.Count} stages: {string.Join(" → ", spec.Stages.Select(s => s.Name))})");
        var started = DateTime.UtcNow;
        var display = new ProgressLine(output);
        await using var node = RlftNode.Create(new NodeOptions
        {
            Job = spec,
            // A job with an rlft.feedback section also hosts its rater endpoint.
            Roles = spec.Feedback is null ? ["learner", "rollout", "reward"] : ["learner", "rollout", "reward", "feedback"],
            RolloutWorkers = spec.RolloutWorkers,
            OnStatus = display.Update,
        }, new TorchEngineFactory());
        await node.StartAsync(ct);
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
        var seconds = (DateTime.UtcNow - started).TotalSeconds;
        output.WriteLine($"rlft: {(finished.Succeeded ? "finished" : "FAILED")}: {finished.Message} in {seconds:F0}s");
        PrintSummary(output, finished.Summary);
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
