using System.Text.Json;
using Rlft.Actors.Jobs;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Lora;
using Rlft.Policy.Training.Trainers;
using Rlft.Policy.Tokenization;
using Rlft.Tests.Cli;
using static TorchSharp.torch;

namespace Rlft.Tests.Cluster;

/// <summary>
/// LoRA in a job with no online or federated stage (SFT, DPO, SFT then DPO) on a full-precision base: the adapters
/// attach when the job starts and every stage trains them, as on a quantized base; the base never moves.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class LoraOfflineJobTests(ITestOutputHelper output)
{
    const string Lora = "lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj] }";
    const string Dpo = "{ kind = dpo, data = \"builtin:preferences\", steps = 30, batch-size = 8\n optimizer { lr = 5e-3 }\n dpo { beta = 0.5 }\n}";
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The init model's tensors, read from its file: the base before the job.</summary>
    static Dictionary<string, Tensor> InitialBase(JobSpec job) =>
        SafetensorsFile.Load(Path.Combine(job.RunDirectory, "init-model", "model.safetensors"));

    static void AssertBaseUnchanged(JobSpec job, nn.Module model)
    {
        var initial = InitialBase(job);
        var now = model.state_dict().Where(kv => !kv.Key.Contains(".lora_")).ToDictionary();
        int compared = 0;
        foreach (var (name, t) in initial)
        {
            if (!now.TryGetValue(name, out var current)) continue;   // a tied weight stored under one name
            // Under LoRA with bf16 compute the base is read into bf16 and stays as read.
            using var expected = t.to(current.dtype);
            Assert.True(expected.Equals(current), $"base tensor {name} changed");
            compared++;
        }
        Assert.True(compared >= now.Count - 1, $"compared {compared} of {now.Count} base tensors");
    }

    static List<double> Series(JobSpec job, string key) =>
        JobHarness.TrainingSteps(job.RunDirectory).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty(key, out _)).Select(e => e.GetProperty(key).GetDouble()).ToList();

    [Theory]
    [InlineData("fp32", "")]
    [InlineData("bf16 compute (bf16 base from load, fp32 adapters)", "precision = bf16")]
    public async Task A_lora_sft_job_lowers_the_held_out_loss_and_moves_only_the_adapters(string label, string precision)
    {
        output.WriteLine(label);
        var job = JobHarness.Job(JobHarness.Sft, extra: Lora + "\n" + precision);
        Assert.True(job.LoraFromStart);
        var engines = new JobHarness.RecordingFactory();
        var (node, finished) = await JobHarness.RunAllRoles(job, engines, Ct);
        await using var _ = node;
        Assert.True(finished.Succeeded, finished.Message);
        double before = finished.Summary["0-sft/before/eval/loss"], after = finished.Summary["0-sft/after/eval/loss"];
        output.WriteLine($"held-out loss {before:F4} -> {after:F4}");
        Assert.True(after < before - 0.05, $"held-out loss {before} -> {after}");

        var learner = Assert.Single(engines.Learners);
        var adapters = Assert.IsType<LoraAdapters>(learner.Adapters);
        Assert.Null(learner.Mixed);   // no fp32 master and no compute copy: the adapters train on the base directly
        var baseDtype = precision.Length > 0 ? ScalarType.BFloat16 : ScalarType.Float32;
        Assert.All(learner.Policy.Model.named_parameters().Where(p => !p.name.Contains(".lora_")), p => Assert.Equal(baseDtype, p.parameter.dtype));
        Assert.All(adapters.Parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.Equal(0, learner.AdapterBaseVersion);
        Assert.Contains(adapters.StateDict(), kv => kv.Key.EndsWith("lora_B.weight") && kv.Value.abs().max().item<float>() > 0);
        // Only the adapters train: every base tensor is bitwise what the init model holds.
        Assert.All(learner.Policy.Model.named_parameters().Where(p => p.parameter.requires_grad), p => Assert.Contains(".lora_", p.name));
        AssertBaseUnchanged(job, learner.Policy.Model);
        // The checkpoint holds the base and the adapters in PEFT's layout.
        var checkpoint = ResumeHarness.FinalCheckpoint(job.RunDirectory);
        Assert.True(File.Exists(Path.Combine(checkpoint, "policy-adapter", LoraAdapters.WeightsFile)));
    }

    [Fact]
    public async Task A_lora_dpo_job_lowers_its_loss_against_the_base_with_the_adapters_off()
    {
        var job = JobHarness.Job(Dpo, extra: Lora);
        var engines = new JobHarness.RecordingFactory();
        var (node, finished) = await JobHarness.RunAllRoles(job, engines, Ct);
        await using var _ = node;
        Assert.True(finished.Succeeded, finished.Message);
        var loss = Series(job, "loss/dpo");
        Assert.Equal(30, loss.Count);
        double first = loss.Take(4).Average(), last = loss.TakeLast(4).Average();
        output.WriteLine($"loss/dpo first 4 steps {first:F4}, last 4 {last:F4}");
        // The adapters start at zero (lora_B = 0): the first step's loss is ln 2 exactly as the policy equals its reference.
        Assert.Equal(Math.Log(2), loss[0], 1e-4);
        double marginBefore = finished.Summary["0-dpo/before/eval/margin"], marginAfter = finished.Summary["0-dpo/after/eval/margin"];
        output.WriteLine($"held-out margin {marginBefore:F4} -> {marginAfter:F4}, accuracy {finished.Summary["0-dpo/before/eval/accuracy"]:F3} -> {finished.Summary["0-dpo/after/eval/accuracy"]:F3}");
        Assert.True(last < first - 0.03, $"loss/dpo {first} -> {last}");
        Assert.True(marginAfter > marginBefore, $"held-out margin {marginBefore} -> {marginAfter}");

        var learner = Assert.Single(engines.Learners);
        AssertBaseUnchanged(job, learner.Policy.Model);
        // The stage's reference is the base with the adapters off: on one batch it matches a full-weight copy of the
        // init model read from disk (no adapters at all), while the trained policy does not.
        var reference = learner.StageReference(resume: true);
        var initDir = Path.Combine(job.RunDirectory, "init-model");
        using var copy = Checkpoint.Load(initDir, CPU);
        var full = new PolicyModel(copy, HfTokenizer.Load(initDir));
        var rng = new Random(5);
        int vocab = (int)copy.Config.VocabSize;
        var prompts = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, 6).Select(_ => rng.Next(vocab)).ToArray()).ToList();
        var completions = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, 5).Select(_ => rng.Next(vocab)).ToArray()).ToList();
        using var viaReference = reference.LogProbs(prompts, completions);
        using (no_grad())
        {
            using var manual = full.LogProbsOf(prompts, completions);
            using var policy = learner.Policy.LogProbsOf(prompts, completions);
            double diff = (viaReference - manual.LogProbs).abs().max().item<float>();
            double moved = (policy.LogProbs - manual.LogProbs).abs().max().item<float>();
            output.WriteLine($"reference vs full-weight copy: max |Δ log p| = {diff:E2}; trained policy vs copy: {moved:E2}");
            Assert.True(diff < 1e-5, $"reference differs from the base by {diff}");
            Assert.True(moved > 1e-3, $"the trained policy still equals the base ({moved})");
        }
    }

    [Fact]
    public async Task A_lora_sft_job_killed_after_a_checkpoint_and_resumed_ends_with_the_adapters_of_one_run_straight_through()
    {
        // SFT then SFT (40 steps) with LoRA; offline stages checkpoint at their end (checkpoint-every > 0).
        string stages = JobHarness.Sft + "\n{ kind = sft, data = \"builtin:sft\", steps = 40, batch-size = 16\n optimizer { lr = 1e-3 }\n}";
        string extra = Lora + "\n checkpoint-every = 1";
        string straight = JobHarness.JobFile(stages, extra);
        Assert.Equal(0, await RunToEnd("run", straight));

        string killed = JobHarness.JobFile(stages, extra);
        string runDir = JobSpec.Load(killed).RunDirectory;
        using (var p = await RlftProcess.StartAsync(["run", killed], "rlft: job", Ct))
        {
            await ResumeHarness.WaitForCheckpoint(runDir, p, midStage: false);
            p.Kill();
            await p.Process.WaitForExitAsync(Ct);
            output.WriteLine($"--- killed run\n{p.Log}");
        }
        Assert.False(File.Exists(Path.Combine(runDir, "summary.json")), "the run finished before it was killed; the test needs a longer stage");
        var from = ResumePoint.Latest(runDir);
        output.WriteLine($"resuming from {from.Directory} at global step {from.State.GlobalStep}");
        Assert.True(File.Exists(Path.Combine(from.Directory, "policy-adapter", LoraAdapters.WeightsFile)));

        Assert.Equal(0, await RunToEnd("run", "--resume", runDir));
        string a = JobSpec.Load(straight).RunDirectory;
        string finalA = ResumeHarness.FinalCheckpoint(a), finalB = ResumeHarness.FinalCheckpoint(runDir);
        // The adapters after the resumed stage: bitwise those of the straight run (the tolerance stated is 0).
        var adaptersA = SafetensorsFile.Load(Path.Combine(finalA, "policy-adapter", LoraAdapters.WeightsFile));
        var adaptersB = SafetensorsFile.Load(Path.Combine(finalB, "policy-adapter", LoraAdapters.WeightsFile));
        Assert.Equal(adaptersA.Keys.Order(), adaptersB.Keys.Order());
        foreach (var (name, t) in adaptersA)
        {
            double diff = (t - adaptersB[name]).abs().max().item<float>();
            Assert.True(diff == 0, $"{name}: max |Δ| {diff:E2} between the straight and the resumed run");
        }
        // Between offline stages there is no optimizer state to keep: the base and the adapters are the whole checkpoint.
        foreach (var file in new[] { "policy/model.safetensors" })
            Assert.True(ResumeHarness.Hash(Path.Combine(finalA, file)) == ResumeHarness.Hash(Path.Combine(finalB, file)), $"{file} differs between the straight and the resumed run");
        using var sa = JsonDocument.Parse(File.ReadAllText(Path.Combine(a, "summary.json")));
        using var sb = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
        Assert.Equal(sa.RootElement.GetProperty("1-sft/after/eval/loss").GetDouble(), sb.RootElement.GetProperty("1-sft/after/eval/loss").GetDouble());
    }

    async Task<int> RunToEnd(params string[] args)
    {
        using var p = await RlftProcess.StartAsync(args, "rlft: job", Ct);
        await p.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(4), Ct);
        output.WriteLine($"--- rlft {string.Join(' ', args)} (exit {p.Process.ExitCode})\n{p.Log}");
        return p.Process.ExitCode;
    }
}
