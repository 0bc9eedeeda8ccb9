using System.Text.Json;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Models;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Cli;

/// <summary>
/// Every preset in hocon/ is run as a user runs it (`rlft run PRESET`, in full) and each of its stages must show on
/// held-out data that it did its job, by the margins below; a preset without a test here fails
/// <see cref="Every_preset_that_runs_a_job_has_a_test"/>.
/// </summary>
public class PresetTests(ITestOutputHelper output)
{
    /// <summary>The presets that run a job, and the test that runs each.</summary>
    static readonly Dictionary<string, string> Tested = new()
    {
        ["quickstart.conf"] = nameof(Presets_learn),
        ["ppo.conf"] = nameof(Presets_learn),
        ["dpo.conf"] = nameof(Presets_learn),
        ["grpo.conf"] = nameof(Presets_learn),
        ["cluster.conf"] = nameof(Presets_learn),
        ["chat.conf"] = nameof(Chat_preset_learns),
        ["meta.conf"] = nameof(Many_task_presets_learn),
        ["multitask.conf"] = nameof(Many_task_presets_learn),
        ["sequential.conf"] = nameof(Many_task_presets_learn),
        ["classify.conf"] = nameof(Encoder_presets_learn),
        ["qa.conf"] = nameof(Encoder_presets_learn),
        ["sentiment-ppo.conf"] = nameof(Sentiment_ppo_preset_makes_the_classifier_find_reviews_more_positive),
        // Needs client processes with their own data: run by FederatedPresetTests as scripts/federated-demo.sh runs it.
        ["federated.conf"] = nameof(Rlft.Tests.Federated.FederatedPresetTests.The_federated_preset_runs_with_a_server_and_four_client_processes),
        // Needs raters: run with simulated ones by HumanRewardJobTests (held-out reward +0.2 or more).
        ["human-ppo.conf"] = nameof(Rlft.Tests.Feedback.HumanRewardJobTests.Ppo_on_simulated_raters_ratings_moves_the_policy_toward_their_hidden_rule),
    };

    [Fact]
    public void Every_preset_that_runs_a_job_has_a_test()
    {
        var presets = Directory.GetFiles(RlftConfig.HoconDirectory, "*.conf")
            .Where(f => RlftConfig.LoadFile(f).Has("rlft.job.stages")).Select(Path.GetFileName).Order().ToList();
        Assert.NotEmpty(presets);
        Assert.All(presets, p => Assert.True(Tested.ContainsKey(p!), $"hocon/{p} runs a job but no test runs it"));
    }

    [Theory]
    [InlineData("quickstart.conf")]
    [InlineData("ppo.conf")]
    [InlineData("dpo.conf")]
    [InlineData("grpo.conf")]
    [InlineData("cluster.conf")]
    public void Presets_learn(string preset)
    {
        var (job, summary) = RunPreset(preset);
        foreach (var stage in job.Stages) AssertLearned(stage, summary.RootElement);
    }

    /// <summary>
    /// hocon/chat.conf, SFT → DPO on conversations with a ChatML model: SFT halves its held-out loss; DPO ranks the
    /// held-out pairs and its replies, sampled until &lt;|im_end|&gt;, score higher under the task reward than the SFT
    /// policy's while staying near it. Measured (seed 1): loss 6.08 → 0.98; accuracy 1.0, margin 7.35, reward
    /// 0.51 → 0.69, win rate 0.59, KL 7.4, length 8.6 → 8.4 tokens.
    /// </summary>
    [Fact]
    public void Chat_preset_learns()
    {
        var (job, summary) = RunPreset("chat.conf");
        double Get(string key) => summary.RootElement.TryGetProperty(key, out var v) ? v.GetDouble() : throw new Xunit.Sdk.XunitException($"summary.json has no {key}");
        Assert.True(Get("0-sft/after/eval/loss") <= 0.5 * Get("0-sft/before/eval/loss"), $"sft loss {Get("0-sft/before/eval/loss"):F3} → {Get("0-sft/after/eval/loss"):F3}");
        Assert.True(Get("1-dpo/after/eval/accuracy") >= 0.9, $"dpo accuracy {Get("1-dpo/after/eval/accuracy"):F3}");
        Assert.True(Get("1-dpo/after/eval/margin") > Get("1-dpo/before/eval/margin"), "dpo margin did not grow");
        Assert.True(Get("1-dpo/after/eval/reward") >= Get("1-dpo/before/eval/reward") + 0.1, $"dpo reward {Get("1-dpo/before/eval/reward"):F3} → {Get("1-dpo/after/eval/reward"):F3}");
        Assert.True(Get("1-dpo/after/eval/win_rate") >= 0.5, $"dpo win rate {Get("1-dpo/after/eval/win_rate"):F3}");
        // Replies still stop at <|im_end|> and stay near the SFT policy (a run-away policy has KL of 50 nats and more).
        Assert.True(Get("1-dpo/after/eval/kl") <= 15, $"dpo kl {Get("1-dpo/after/eval/kl"):F3}");
        Assert.True(Get("1-dpo/after/eval/length") <= 1.5 * Get("1-dpo/before/eval/length"), $"dpo length {Get("1-dpo/before/eval/length"):F2} → {Get("1-dpo/after/eval/length"):F2}");
        Assert.Equal(2, job.Stages.Count);
    }

    /// <summary>
    /// The many-task presets on the built-in family: every SFT stage halves its held-out loss; every adapt stage lowers
    /// the held-out tasks' loss by a fifth or more in its 10 steps; a meta stage lowers its tasks' held-out loss; with
    /// replay, the first task of hocon/sequential.conf keeps at least 90% of its held-out reward through the later stages.
    /// </summary>
    [Theory]
    [InlineData("meta.conf")]
    [InlineData("multitask.conf")]
    [InlineData("sequential.conf")]
    public void Many_task_presets_learn(string preset)
    {
        var (job, summary) = RunPreset(preset);
        double Get(string key) => summary.RootElement.TryGetProperty(key, out var v) ? v.GetDouble() : throw new Xunit.Sdk.XunitException($"summary.json has no {key}");
        foreach (var stage in job.Stages)
        {
            string says = $"{stage.Name} loss {Get($"{stage.Name}/before/eval/loss"):F3} → {Get($"{stage.Name}/after/eval/loss"):F3}";
            switch (stage.Kind)
            {
                case StageKind.Sft when stage.Index == 0:
                    Assert.True(Get($"{stage.Name}/after/eval/loss") <= 0.5 * Get($"{stage.Name}/before/eval/loss"), says);
                    break;
                case StageKind.Adapt:
                    Assert.True(Get($"{stage.Name}/after/eval/loss") <= 0.8 * Get($"{stage.Name}/before/eval/loss"), says);
                    break;
                case StageKind.Meta:
                    Assert.True(Get($"{stage.Name}/after/eval/loss") < Get($"{stage.Name}/before/eval/loss"), says);
                    break;
            }
        }
        if (preset == "sequential.conf")
            foreach (var later in job.Stages.Skip(1))
                Assert.True(Get($"{later.Name}/after/retention/{job.Stages[0].Name}/reward_kept") >= 0.9,
                    $"after {later.Name}, {job.Stages[0].Name} keeps {Get($"{later.Name}/after/retention/{job.Stages[0].Name}/reward_kept"):F3} of its held-out reward");
        if (job.Stages.Any(s => s.Kind == StageKind.Adapt))
        {
            Assert.True(File.Exists(Path.Combine(job.RunDirectory, RunRecorder.AdaptationFile)));
            Assert.Equal(job.Stages.Where(s => s.Kind == StageKind.Adapt).Select(s => s.Name),
                summary.RootElement.GetProperty("adaptation").EnumerateArray().Select(r => r.GetProperty("stage").GetString()));
        }
    }

    /// <summary>hocon/classify.conf reaches 0.9 held-out accuracy and macro F1; hocon/qa.conf the exact match stated in <see cref="AssertLearned"/>.</summary>
    [Theory]
    [InlineData("classify.conf")]
    [InlineData("qa.conf")]
    public void Encoder_presets_learn(string preset)
    {
        var (job, summary) = RunPreset(preset);
        foreach (var stage in job.Stages) AssertLearned(stage, summary.RootElement);
        foreach (var stage in job.Stages) Assert.True(File.Exists(Path.Combine(job.RunDirectory, "encoders", stage.Name, "model.safetensors")));
    }

    /// <summary>
    /// hocon/sentiment-ppo.conf, the classic RLHF setup: the classifier (stage 0) reaches 0.9 held-out accuracy, and the
    /// policy after PPO writes reviews of held-out prompts that the classifier finds more positive than the SFT policy's
    /// did: its mean P(POSITIVE) over 64 sampled reviews rises by 0.25 or more. Measured (seed 1): classifier accuracy 1.00;
    /// P(POSITIVE) 0.46 → 0.91, and the task's own reward (the share of positive words) 0.48 → 0.96.
    /// </summary>
    [Fact]
    public void Sentiment_ppo_preset_makes_the_classifier_find_reviews_more_positive()
    {
        var (job, summary) = RunPreset("sentiment-ppo.conf");
        AssertLearned(job.Stages[0], summary.RootElement);
        // The checkpoints at the stage boundaries: after classify, after SFT, and the final one after PPO.
        var steps = Directory.GetDirectories(Path.Combine(job.RunDirectory, "checkpoints"), "step-*")
            .OrderBy(d => int.Parse(Path.GetFileName(d)["step-".Length..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(3, steps.Count);
        var prompts = Rlft.Rollout.Data.Jsonl.ReadPrompts(Path.Combine(job.RunDirectory, "data", "eval-prompts.jsonl")).Take(64).Select(p => p.Prompt).ToList();
        using var classifier = Rlft.Policy.Encoders.EncoderTextModel.Load(Path.Combine(job.RunDirectory, "encoders", "sentiment"));
        double Positive(string checkpoint)
        {
            using var lm = Rlft.Policy.Checkpoints.Checkpoint.Load(Path.Combine(checkpoint, "policy"));
            using var tokenizer = Rlft.Policy.Tokenization.HfTokenizer.Load(Path.Combine(checkpoint, "policy"));
            {
                var options = new Rlft.Policy.Generation.GenerationOptions { MaxNewTokens = 12, Temperature = 1.0, Seed = 11, StopTokenIds = [tokenizer.EosId] };
                var ids = prompts.Select(p => new Rlft.Policy.Chat.ExampleEncoder(tokenizer).Prompt(p)).ToList();
                var output = Rlft.Policy.Generation.TextGenerator.Generate(lm, ids, options, tokenizer.PadId, tokenizer.EosId);
                var reviews = output.Tokens.Select(t => (Text: tokenizer.Decode(t), Pair: (string?)null)).ToList();
                return classifier.Logits(reviews).Average(l => 1 / (1 + Math.Exp(l[0] - l[1])));
            }
        }
        double before = Positive(steps[1]), after = Positive(steps[2]);
        output.WriteLine($"held-out P(POSITIVE): {before:F3} (SFT) → {after:F3} (PPO)");
        Assert.True(after >= before + 0.25, $"held-out P(POSITIVE) {before:F3} → {after:F3}");
    }

    (JobSpec Job, JsonDocument Summary) RunPreset(string preset)
    {
        string path = Path.Combine(RlftConfig.HoconDirectory, preset);
        string dir = Directory.CreateTempSubdirectory("rlft-preset").FullName;
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = Rlft.Host.Commands.Cli.Run(["run", path, "--set", $"output-dir=\"{dir}\""], o, e);
        output.WriteLine(o.ToString());
        Assert.True(code == 0, $"exit {code}: {e}");
        var job = JobSpec.Load(path, [$"output-dir=\"{dir}\""]);
        var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(job.RunDirectory, RunRecorder.SummaryFile)));
        // The held-out figures are in metrics.jsonl too, beside the training steps.
        Assert.Equal(2 * job.Stages.Count, File.ReadLines(Path.Combine(job.RunDirectory, "metrics.jsonl")).Count(l => l.Contains("\"eval\":", StringComparison.Ordinal)));
        return (job, summary);
    }

    /// <summary>What each stage kind must show on held-out data, before → after.</summary>
    static void AssertLearned(StageSpec stage, JsonElement summary)
    {
        double Get(string label, string key) => summary.TryGetProperty($"{stage.Name}/{label}/eval/{key}", out var v) ? v.GetDouble()
            : throw new Xunit.Sdk.XunitException($"summary.json has no {stage.Name}/{label}/eval/{key}");
        double Or(string label, string key) => summary.TryGetProperty($"{stage.Name}/{label}/eval/{key}", out var v) ? v.GetDouble() : double.NaN;
        string Says(string key) => $"{stage.Name} {key}: {Or("before", key):F3} → {Or("after", key):F3}";
        switch (stage.Kind)
        {
            case StageKind.Sft:
                Assert.True(Get("after", "loss") <= 0.5 * Get("before", "loss"), Says("loss"));
                break;
            case StageKind.RewardModel:
                Assert.True(Get("after", "accuracy") >= Math.Max(0.8, Get("before", "accuracy") + 0.2), Says("accuracy"));
                break;
            case StageKind.Dpo:
                Assert.True(Get("after", "accuracy") >= 0.8, Says("accuracy"));
                Assert.True(Get("after", "margin") > Get("before", "margin"), Says("margin"));
                Assert.True(Get("after", "reward") >= Get("before", "reward") + 0.2, Says("reward"));
                Assert.True(Get("after", "win_rate") >= 0.6, Says("win_rate"));
                break;
            case StageKind.Ppo:
                Assert.True(Get("after", "reward") >= Get("before", "reward") + 0.3, Says("reward"));
                break;
            case StageKind.Classify:
                Assert.True(Get("after", "accuracy") >= 0.9, Says("accuracy"));
                Assert.True(Get("after", "f1") >= 0.9, Says("f1"));
                break;
            case StageKind.Qa:
                // Measured: exact match 0.05 → 1.00 over 200 held-out questions with seed 1 (F1 the same: one-word
                // answers); seeds 2 and 3 reach 1.00 and 0.815.
                Assert.True(Get("after", "exact_match") >= 0.8, Says("exact_match"));
                break;
            case StageKind.Grpo:
                // At least +0.3 exact-match accuracy, or half the gap to 1.
                double before = Get("before", "reward");
                Assert.True(Get("after", "reward") - before >= Math.Min(0.3, (1 - before) / 2), Says("reward"));
                break;
            default:
                throw new Xunit.Sdk.XunitException($"no held-out margin stated for {stage.Kind} stages");
        }
    }

    [Fact]
    public void Every_stage_kind_reports_held_out_figures_before_and_after()
    {
        string teacher = Path.Combine(Directory.CreateTempSubdirectory("rlft-teacher").FullName, "model");
        ModelPresets.InitModel("gpt2", "tiny", teacher, seed: 3, corpus: Rlft.Rollout.Tasks.ReviewTask.TokenizerCorpus(3)).Dispose();
        string Stage(string kind, string data, string rest = "") => $"{{ kind = {kind}, data = \"{data}\", steps = 2, batch-size = 8\n sampling {{ max-new-tokens = 6 }}\n {rest}\n }}";
        var job = JobHarness.Job(string.Join("\n",
            Stage("sft", "builtin:sft"), Stage("reward-model", "builtin:preferences"), Stage("dpo", "builtin:preferences"),
            Stage("distill", "builtin:sft", $"teacher {{ path = \"{teacher}\" }}"), Stage("ppo", "builtin:prompts"), Stage("grpo", "builtin:sums", "grpo { group-size = 4 }"),
            Stage("online-dpo", "builtin:prompts")), extra: "eval-prompts = 8");
        var result = PlainLoop.Run(job, new Rlft.Actors.Compute.TorchEngineFactory());
        var expected = new Dictionary<StageKind, string[]>
        {
            [StageKind.Sft] = ["loss"],
            [StageKind.RewardModel] = ["accuracy", "margin"],
            [StageKind.Dpo] = ["accuracy", "margin", "reward"],
            [StageKind.Distill] = ["teacher_kl", "reward"],
            [StageKind.Ppo] = ["reward", "kl", "win_rate"],
            [StageKind.Grpo] = ["reward", "kl", "win_rate"],
            [StageKind.OnlineDpo] = ["reward", "kl", "win_rate"],
        };
        foreach (var stage in job.Stages)
            foreach (var label in new[] { "before", "after" })
                foreach (var key in expected[stage.Kind])
                    Assert.True(result.Summary.ContainsKey($"{stage.Name}/{label}/eval/{key}"), $"{stage.Name}/{label}/eval/{key} missing");
        // DPO after its stage is also compared with the stage-start policy.
        Assert.True(result.Summary.ContainsKey("2-dpo/after/eval/win_rate") && result.Summary.ContainsKey("2-dpo/after/eval/kl"));
    }
}
