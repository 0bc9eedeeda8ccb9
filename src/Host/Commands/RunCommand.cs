using System.CommandLine;
using System.Globalization;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
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
        var command = new Command("run", "Run a job in one process (all roles).") { job, set, resume };
        command.SetAction((result, ct) => RunAsync(result.GetValue(job)!, result.GetValue(set) ?? [], result.GetValue(resume), result.InvocationConfiguration.Output, ct));
        return command;
    }

    static async Task<int> RunAsync(string jobPath, string[] overrides, string? resume, TextWriter output, CancellationToken ct)
    {
        JobSpec spec;
        try { spec = JobSpec.Load(jobPath, overrides); }
        catch (ConfigException e) { throw new CliException(e.Message); }
        if (resume is not null)
            throw new CliException($"--resume {resume}: resuming a run is not supported yet");
        Directory.CreateDirectory(spec.RunDirectory);
        output.WriteLine($"rlft: job '{spec.Name}' → {Path.GetFullPath(spec.RunDirectory)} ({spec.Stages.Count} stages: {string.Join(" → ", spec.Stages.Select(s => s.Name))})");
        var started = DateTime.UtcNow;
        var display = new ProgressLine(output);
        await using var node = RlftNode.Create(new NodeOptions
        {
            Job = spec,
            Roles = ["learner", "rollout", "reward"],
            RolloutWorkers = spec.RolloutWorkers,
            OnStatus = display.Update,
        }, new TorchEngineFactory());
        await node.StartAsync(ct);
        JobFinished finished;
        try { finished = await node.Finished.WaitAsync(ct); }
        catch (OperationCanceledException)
        {
            output.WriteLine("rlft: interrupted; stopping the node");
            return 130;
        }
        display.End();
        var seconds = (DateTime.UtcNow - started).TotalSeconds;
        output.WriteLine($"rlft: {(finished.Succeeded ? "finished" : "FAILED")}: {finished.Message} in {seconds:F0}s");
        foreach (var (k, v) in finished.Summary.OrderBy(kv => kv.Key))
            output.WriteLine($"  {k,-44} {v.ToString("0.####", CultureInfo.InvariantCulture)}");
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
