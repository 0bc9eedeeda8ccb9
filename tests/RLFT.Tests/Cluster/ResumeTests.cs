using System.Security.Cryptography;
using System.Text.Json;
using Rlft.Actors.Jobs;
using Rlft.Tests.Cli;

namespace Rlft.Tests.Cluster;

/// <summary>
/// Exact resume: `rlft run` (the built executable) is killed with SIGKILL after it wrote a mid-stage
/// checkpoint, then `rlft run --resume RUN_DIR` finishes the job. Its final weights and its metrics must be
/// bitwise those of the same job run straight through.
/// </summary>
[Collection(ProcessTests.Name)]
public class ResumeTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;
    static string RunDirectoryOf(string jobFile) => JobSpec.Load(jobFile).RunDirectory;

    async Task<int> RunToEnd(params string[] args)
    {
        using var p = await RlftProcess.StartAsync(args, "rlft: job", Ct);
        await p.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(4), Ct);
        output.WriteLine($"--- rlft {string.Join(' ', args)} (exit {p.Process.ExitCode})\n{p.Log}");
        return p.Process.ExitCode;
    }

    /// <summary>metrics.jsonl without wall-clock figures, one dictionary per line.</summary>
    static List<Dictionary<string, string>> Metrics(string runDir) =>
        File.ReadLines(Path.Combine(runDir, "metrics.jsonl")).Select(line =>
        {
            using var doc = JsonDocument.Parse(line);
            // The SFT stage's held-out loss before its first step is the one figure that differs in the sixth digit
            // between any two runs (see the summary comparison below): it is compared there, within a tolerance.
            bool sftBefore = doc.RootElement.TryGetProperty("eval", out var label) && label.GetString() == "before" && doc.RootElement.TryGetProperty("eval/loss", out _);
            return doc.RootElement.EnumerateObject()
                .Where(p => !p.Name.StartsWith("timing/", StringComparison.Ordinal) && p.Name != "rollout/tokens_per_second" && !(sftBefore && p.Name == "eval/loss"))
                .ToDictionary(p => p.Name, p => p.Value.GetRawText());
        }).ToList();


    const string Grpo = JobHarness.Sft + "\n{ kind = grpo, data = \"builtin:sums\", eval-data = \"builtin:sums\", steps = 12, batch-size = 16\n sampling { max-new-tokens = 6 }\n"
        + " grpo { group-size = 4, epochs = 2 }\n rewards {\n components = [ { name = task, source = function, function = review-task }\n { name = brevity, source = length, target = 2, unit = words } ]\n }\n}";

    [Theory]
    [InlineData("PPO, full fine-tuning", "")]
    [InlineData("PPO, full fine-tuning with 8-bit AdamW", "")]
    [InlineData("PPO, LoRA", "lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj] }")]
    [InlineData("PPO, LoRA with bf16 compute (bf16 base, fp32 adapters)", "lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj] }\n precision = bf16")]
    [InlineData("PPO, QLoRA (nf4 base, adapters from SFT on)", "lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj] }\n model.quantize = nf4")]
    [InlineData("GRPO", "")]
    [InlineData("PPO, stopped with SIGTERM (Ctrl-C)", "")]
    public async Task A_run_killed_after_a_mid_stage_checkpoint_and_resumed_ends_bitwise_equal_to_one_run_straight_through(string label, string lora)
    {
        output.WriteLine(label);
        bool grpo = label == "GRPO", interrupt = label.Contains("SIGTERM");
        string stages = grpo ? Grpo : ResumeHarness.Stages;
        if (label.Contains("8-bit")) stages = stages.Replace("{ kind = ppo,", "{ kind = ppo\n optimizer { kind = adamw-8bit }\n");
        Assert.Equal(label.Contains("8-bit"), stages.Contains("adamw-8bit"));
        // Interrupted: no periodic checkpoints, the one Ctrl-C writes is the only resume point.
        string extra = (interrupt ? "max-policy-lag = 0" : ResumeHarness.Extra) + "\n" + lora;

        string straight = JobHarness.JobFile(stages, extra);
        Assert.Equal(0, await RunToEnd("run", straight));

        // The same job again, killed as soon as a checkpoint inside the PPO stage is on disk.
        string killed = JobHarness.JobFile(stages, extra);
        string runDir = RunDirectoryOf(killed);
        using (var p = await RlftProcess.StartAsync(["run", killed], "rlft: job", Ct))
        {
            if (interrupt)
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
                while (!p.Log.Contains("[Ppo 4/16]") && DateTime.UtcNow < deadline && !p.Process.HasExited) await Task.Delay(10, Ct);
                using (var term = System.Diagnostics.Process.Start("kill", ["-TERM", p.Process.Id.ToString()])) await term.WaitForExitAsync(Ct);
                await p.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);
                Assert.True(p.Process.ExitCode == 130, $"exit {p.Process.ExitCode}:\n{p.Log}");
                Assert.Contains("interrupted-step-", p.Log);
            }
            else
            {
                await ResumeHarness.WaitForMidStageCheckpoint(runDir, p);
                p.Kill();
                await p.Process.WaitForExitAsync(Ct);
            }
            output.WriteLine($"--- stopped run\n{p.Log}");
        }
        Assert.False(File.Exists(Path.Combine(runDir, "summary.json")), "the run finished before it was killed; the test needs a longer stage");
        var resumedFrom = ResumePoint.Latest(runDir);
        output.WriteLine($"resuming from {resumedFrom.Directory} at step {resumedFrom.State.Step}");
        Assert.True(resumedFrom.State.Started);
        if (interrupt) Assert.StartsWith("interrupted-step-", Path.GetFileName(resumedFrom.Directory));
        Assert.InRange(resumedFrom.State.Step, 4, grpo ? 11 : 15);

        Assert.Equal(0, await RunToEnd("run", "--resume", runDir));

        string a = RunDirectoryOf(straight);
        Assert.Equal(Metrics(a), Metrics(runDir));
        string finalA = ResumeHarness.FinalCheckpoint(a), finalB = ResumeHarness.FinalCheckpoint(runDir);
        Assert.Equal(Path.GetFileName(finalA), Path.GetFileName(finalB));
        var files = grpo ? new List<string> { "policy/model.safetensors", "trainer/optimizer.bin" }
            : new List<string> { "policy/model.safetensors", "value_head.safetensors", "trainer/optimizer.bin", "trainer/ppo_shuffle.bin" };
        if (lora.Length > 0) files.Add("policy-adapter/adapter_model.safetensors");
        if (lora.Contains("quantize")) files.AddRange(["policy/quantization_config.json", "trainer/reference-adapter/adapter_model.safetensors"]);
        if (label.Contains("8-bit")) Assert.True(Rlft.Policy.Training.Optimizers.AdamW8bit.IsOwnFormat(Path.Combine(finalB, "trainer/optimizer.bin")), "the resumed run saved 8-bit state");
        foreach (var file in files)
            Assert.True(ResumeHarness.Hash(Path.Combine(finalA, file)) == ResumeHarness.Hash(Path.Combine(finalB, file)), $"{file} differs between the straight and the resumed run");
        using var sa = JsonDocument.Parse(File.ReadAllText(Path.Combine(a, "summary.json")));
        using var sb = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
        foreach (var p in sa.RootElement.EnumerateObject().Where(p => p.Name != "message"))
        {
            var other = sb.RootElement.GetProperty(p.Name);
            if (p.Name == "0-sft/before/eval/loss")
            {
                // Measured at the job's very start while the node builds its rollout and reward engines on other
                // threads: libtorch's CPU kernels then split the work differently and this one figure differs
                // between any two runs in the sixth digit (two values seen, 2.4e-6 apart relatively). It comes
                // before anything resume touches; every training step after it is bitwise equal.
                Assert.Equal(p.Value.GetDouble(), other.GetDouble(), tolerance: 1e-5 * Math.Abs(p.Value.GetDouble()));
                continue;
            }
            Assert.True(p.Value.GetRawText() == other.GetRawText(), $"summary {p.Name}: {p.Value} vs {other}");
        }
    }

    /// <summary>
    /// A checkpoint is the leader's and every replica loads it, so a run of two learners resumes with one or three
    /// (<c>--set learners=N</c>) and ends where the straight run of two does, up to the summation order of the
    /// group's sums: within 1e-5 of the weights' norm, each tensor within 1% of the way the steps after the resume point
    /// moved it, and with the same number of steps.
    /// </summary>
    [Fact]
    public async Task A_run_of_two_learners_resumes_with_one_or_three_and_ends_with_the_straight_runs_weights()
    {
        string extra = ResumeHarness.Extra + "\n learners = 2";
        string straight = JobHarness.JobFile(ResumeHarness.Stages, extra);
        Assert.Equal(0, await RunToEnd("run", straight));
        string killed = JobHarness.JobFile(ResumeHarness.Stages, extra);
        string runDir = RunDirectoryOf(killed);
        using (var p = await RlftProcess.StartAsync(["run", killed], "rlft: job", Ct))
        {
            await ResumeHarness.WaitForMidStageCheckpoint(runDir, p);
            p.Kill();
            await p.Process.WaitForExitAsync(Ct);
        }
        Assert.False(File.Exists(Path.Combine(runDir, "summary.json")), "the run finished before it was killed; the test needs a longer stage");
        string resumePoint = ResumePoint.Latest(runDir).Directory;
        output.WriteLine($"resuming from {resumePoint}");
        var atResume = Rlft.Policy.Checkpoints.SafetensorsFile.Load(Path.Combine(resumePoint, "policy", "model.safetensors"));
        // The same stopped run, twice: once as it is, once copied under another output folder.
        string copy = Path.Combine(Directory.CreateTempSubdirectory("rlft-job").FullName, Path.GetFileName(runDir));
        CopyDirectory(runDir, copy);

        Assert.Equal(0, await RunToEnd("run", "--resume", runDir, "--set", "learners=1"));
        Assert.Equal(0, await RunToEnd("run", "--resume", copy, "--set", "learners=3"));

        string a = RunDirectoryOf(straight);
        var expected = Rlft.Policy.Checkpoints.SafetensorsFile.Load(Path.Combine(ResumeHarness.FinalCheckpoint(a), "policy", "model.safetensors"));
        foreach (var (dir, n) in new[] { (runDir, 1), (copy, 3) })
        {
            Assert.Equal(Metrics(a).Count, Metrics(dir).Count);
            // The steps after the resume point were trained by the new group (one learner reports no group size).
            var last = File.ReadLines(Path.Combine(dir, "metrics.jsonl")).Last(l => l.Contains("\"objective/", StringComparison.Ordinal));
            if (n > 1) Assert.Contains($"\"learners/size\":{n}", last);
            else Assert.DoesNotContain("\"learners/size\"", last);
            var weights = Rlft.Policy.Checkpoints.SafetensorsFile.Load(Path.Combine(ResumeHarness.FinalCheckpoint(dir), "policy", "model.safetensors"));
            Assert.Equal(expected.Keys.Order(), weights.Keys.Order());
            // Over a dozen PPO steps the summation order's 1e-7 differences grow: compared over the whole model, and
            // per tensor against how far the steps after the resume point moved it.
            double total = 0, norm = 0, worst = 0, moved = 0;
            foreach (var (name, w) in expected)
            {
                double diff = (weights[name] - w).norm().item<float>(), update = (w - atResume[name]).norm().item<float>();
                total += diff * diff;
                norm += Math.Pow(w.norm().item<float>(), 2);
                moved += update * update;
                worst = Math.Max(worst, diff / Math.Max(update, 1e-12));
                Assert.True(diff <= 1e-2 * update, $"{name}: resumed with {n} learner(s), {diff:g3} from the straight run of 2 (which moved it by {update:g3} after the resume point)");
            }
            output.WriteLine($"resumed with {n} learner(s): ‖w − w_straight‖/‖w_straight‖ = {Math.Sqrt(total / norm):g3}, worst per-tensor ‖w − w_straight‖/‖w_straight − w_resume‖ = {worst:g3}; the steps after the resume point moved the weights by {Math.Sqrt(moved / norm):g3} of their norm");
            Assert.True(Math.Sqrt(total) <= 1e-5 * Math.Sqrt(norm), $"resumed with {n} learner(s): {Math.Sqrt(total):g3} from the straight run of 2 (‖w‖ {Math.Sqrt(norm):g3})");
            Assert.True(Math.Sqrt(moved / norm) > 1e-4, $"the steps after the resume point barely moved the weights ({Math.Sqrt(moved / norm):g3} of their norm)");
        }
    }

    static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }

    static (int Code, string Err) Cli(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, e.ToString());
    }

    [Fact]
    public async Task Resume_names_what_is_missing_and_refuses_a_run_that_already_completed()
    {
        string empty = Directory.CreateTempSubdirectory("rlft-noresume").FullName;
        var (code, err) = Cli("run", "--resume", empty);
        Assert.Equal(2, code);
        Assert.Contains("run.json", err);

        (code, err) = Cli("run", "--resume", Path.Combine(empty, "nowhere"));
        Assert.Equal(2, code);
        Assert.Contains("nowhere", err);

        string job = JobHarness.JobFile(JobHarness.Sft, "checkpoint-every = 5");
        (code, err) = Cli("run", job, "--resume", empty);
        Assert.Equal(2, code);
        Assert.Contains("drop the job file", err);

        (code, err) = Cli("run", "--plain-loop", "--resume", empty);
        Assert.Equal(2, code);
        Assert.Contains("--plain-loop does not resume", err);

        Assert.Equal(0, await RunToEnd("run", job));
        (code, err) = Cli("run", "--resume", RunDirectoryOf(job));
        Assert.Equal(2, code);
        Assert.Contains("already completed", err);
    }

    static ResumeState State(int globalStep, long metricsBytes, bool completed = false) => new()
    {
        Stage = 1, Started = true, Step = globalStep - 15, GlobalStep = globalStep, NextBatchId = 1, Issued = 0, DataCursor = 0,
        PolicyVersion = 1, RewardModelVersion = -1, Trained = 0, StaleDropped = 0, Reissued = 0, Duplicates = 0,
        BatchesPerWorker = [], Summary = [], Outstanding = [], MetricsBytes = metricsBytes, SamplesBytes = 0, Completed = completed,
    };

    static void WriteCheckpoint(string runDir, string name, ResumeState? state)
    {
        string dir = Path.Combine(runDir, "checkpoints", name);
        Directory.CreateDirectory(dir);
        if (state is not null) File.WriteAllText(Path.Combine(dir, ResumeState.FileName), state.ToJson());
    }

    [Fact]
    public void The_resume_point_is_the_newest_complete_checkpoint_and_a_log_cut_shorter_since_is_refused()
    {
        string run = Directory.CreateTempSubdirectory("rlft-points").FullName;
        File.WriteAllText(Path.Combine(run, "metrics.jsonl"), new string('x', 50));
        WriteCheckpoint(run, "step-17", State(17, 10));
        WriteCheckpoint(run, "step-19", State(19, 40));
        WriteCheckpoint(run, "step-21.partial", null);          // killed while writing: no resume.json, never chosen
        WriteCheckpoint(run, "step-8", State(8, 5));
        var point = ResumePoint.Latest(run);
        Assert.Equal("step-19", Path.GetFileName(point.Directory));
        Assert.Equal(State(19, 40).ToJson(), point.State.ToJson());

        File.WriteAllText(Path.Combine(run, "metrics.jsonl"), new string('x', 20));
        var e = Assert.Throws<Rlft.Actors.Configuration.ConfigException>(() => ResumePoint.Latest(run));
        Assert.Contains("metrics.jsonl is shorter", e.Message);
    }
}

/// <summary>The job, the wait and the comparisons the resume and learner-restart tests share.</summary>
static class ResumeHarness
{
    /// <summary>SFT, then 16 PPO steps with rewards that carry signal (the task rule and a length target), an adaptive KL coefficient and shuffled minibatches.</summary>
    public const string Stages = JobHarness.Sft + "\n" + "{ kind = ppo, data = \"builtin:prompts\", eval-data = \"builtin:eval-prompts\", steps = 16, batch-size = 8\n sampling { max-new-tokens = 8 }\n ppo { epochs = 2, mini-batches = 2, adaptive-kl = true }\n"
        + " rewards {\n components = [ { name = task, source = function, function = review-task }\n { name = brevity, source = length, target = 3, unit = words, weight = 0.5 } ]\n }\n}";
    /// <summary>Strictly on-policy (the case where resume is bitwise), a checkpoint every 4 online steps.</summary>
    public const string Extra = "max-policy-lag = 0\n checkpoint-every = 4";

    /// <summary>Waits (while <paramref name="writer"/> runs) for a checkpoint taken inside a stage.</summary>
    public static Task WaitForMidStageCheckpoint(string runDir, RlftProcess writer) => WaitForCheckpoint(runDir, writer, midStage: true);

    /// <summary>Waits for a complete checkpoint (a mid-stage one, or any, such as an offline stage's end) while the writer runs.</summary>
    public static async Task WaitForCheckpoint(string runDir, RlftProcess writer, bool midStage)
    {
        string checkpoints = Path.Combine(runDir, "checkpoints");
        string what = midStage ? "a mid-stage checkpoint" : "a checkpoint";
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        // A *.partial directory is still being written (its resume.json may be half there): only renamed ones count.
        while (!(Directory.Exists(checkpoints) && Directory.GetDirectories(checkpoints)
                   .Any(d => !d.EndsWith(".partial", StringComparison.Ordinal) && File.Exists(Path.Combine(d, ResumeState.FileName)) && (!midStage || ResumeState.Read(d).Started))))
        {
            Assert.False(writer.Process.HasExited, $"the run ended before {what} appeared:\n{writer.Log}");
            Assert.True(DateTime.UtcNow < deadline, $"no {what} within 3 minutes:\n{writer.Log}");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    public static string FinalCheckpoint(string runDir) =>
        Directory.GetDirectories(Path.Combine(runDir, "checkpoints"))
            .Single(d => File.Exists(Path.Combine(d, ResumeState.FileName)) && ResumeState.Read(d).Completed);

    public static string Hash(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));
}
