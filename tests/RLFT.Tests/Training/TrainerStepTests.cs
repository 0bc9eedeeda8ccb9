using Rlft.Policy.Chat;
using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using Rlft.Policy.Lora;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>One step of each objective must move every trainable parameter (a detached graph would not).</summary>
public class TrainerStepTests
{
    static readonly OptimizerOptions Opt = new() { LearningRate = 1e-2, MaxGradNorm = 0, Schedule = LrSchedule.Constant };

    static List<(string Name, Tensor Before, Parameter P)> Snapshot(IEnumerable<(string, Parameter)> ps) =>
        ps.Select(x => (x.Item1, x.Item2.detach().clone(), x.Item2)).ToList();

    static void AssertAllChanged(List<(string Name, Tensor Before, Parameter P)> snap)
    {
        var unchanged = snap.Where(s => s.P.Equals(s.Before)).Select(s => s.Name).ToList();
        Assert.True(unchanged.Count == 0, "unchanged after a step: " + string.Join(", ", unchanged));
    }

    static List<Experience> Rollouts(PolicyModel policy, int n, int group = 1)
    {
        var prompts = ReviewTask.ReviewPrompts(n / group, 5).SelectMany(p => Enumerable.Repeat((p.Prompt, p.Answer), group)).ToList();
        var (texts, tokens, logps) = Evaluator.Sample(policy, prompts, new GenerationOptions { MaxNewTokens = 8, Seed = 1 });
        // Distinct scores so group-normalised advantages are never all zero.
        return prompts.Select((p, i) => new Experience(policy.EncodePrompt(p.Prompt), tokens[i], logps[i], i % 3 * 0.5f, i / group)).ToList();
    }

    [Fact]
    public void Sft_step_changes_every_parameter()
    {
        var policy = TinyTask.Load();
        var snap = Snapshot(policy.Model.named_parameters());
        using var t = new SftTrainer(policy, Opt);
        t.Step(TinyTask.Sft(8, 1));
        AssertAllChanged(snap);
    }

    [Fact]
    public void Reward_model_step_changes_every_parameter()
    {
        var trunk = TinyTask.Load();
        var rm = new RewardModel(trunk, new RewardHead(trunk.Model.Config.HiddenSize));
        // The final LayerNorm bias shifts chosen and rejected scores by the same amount, and the
        // Bradley–Terry loss depends only on their difference: its gradient is exactly zero.
        const string shiftOnly = "transformer.ln_f.bias";
        var snap = Snapshot(trunk.Model.named_parameters().Where(p => p.name != shiftOnly).Concat(rm.Head.named_parameters()));
        var shift = Snapshot(trunk.Model.named_parameters().Where(p => p.name == shiftOnly));
        using var t = new RewardModelTrainer(rm, new RewardModelOptions(), Opt);
        t.Step(TinyTask.Prefs(8, 1));
        AssertAllChanged(snap);
        Assert.True(shift[0].P.Equals(shift[0].Before));
    }

    [Fact]
    public void Ppo_step_changes_every_policy_and_value_parameter()
    {
        var policy = TinyTask.Load();
        var value = new ValueHead(policy.Model.Config.HiddenSize);
        var experience = Rollouts(policy, 8);
        var snap = Snapshot(policy.Model.named_parameters().Concat(value.named_parameters()));
        using var t = new PpoTrainer(policy, value, new FrozenReference(policy.FrozenCopy()), new PpoOptions { Epochs = 1 }, Opt);
        t.Step(experience);
        AssertAllChanged(snap);
    }

    [Fact]
    public void A_ppo_step_on_a_non_finite_reward_leaves_every_weight_unchanged_and_says_so()
    {
        var policy = TinyTask.Load();
        var value = new ValueHead(policy.Model.Config.HiddenSize);
        var experience = Rollouts(policy, 8);
        experience[3] = experience[3] with { Score = float.NaN };   // an infinite score would be clipped (reward-clip) to a finite one
        var snap = Snapshot(policy.Model.named_parameters().Concat(value.named_parameters()));
        using var t = new PpoTrainer(policy, value, new FrozenReference(policy.FrozenCopy()), new PpoOptions { Epochs = 1 }, Opt);
        var metrics = t.Step(experience);
        Assert.Equal(1, metrics["optim/skipped"]);
        var changed = snap.Where(s => !s.P.Equals(s.Before)).Select(s => s.Name).ToList();
        Assert.True(changed.Count == 0, "changed by a skipped step: " + string.Join(", ", changed));
    }

    [Fact]
    public void Dpo_step_changes_every_parameter()
    {
        var policy = TinyTask.Load();
        using var t = new DpoTrainer(policy, new FrozenReference(policy.FrozenCopy()), new DpoOptions(), Opt);
        var snap = Snapshot(policy.Model.named_parameters());
        t.Step(TinyTask.Prefs(8, 2));
        AssertAllChanged(snap);
    }

    [Fact]
    public void Dpo_and_reward_model_steps_train_a_weighted_pair_as_that_many_copies_and_a_tie_towards_no_preference()
    {
        var pairs = TinyTask.Prefs(3, 5);
        var probe = TinyTask.Load();
        var encoded = pairs.Select(p => new EncodedPair(probe.Encoder.PromptCompletion(p.Item1, p.Item2), probe.Encoder.PromptCompletion(p.Item1, p.Item3))).ToList();
        // [a (weight 2), b, c] must give the loss and gradients of [a, a, b, c].
        List<EncodedPair> weighted = [encoded[0] with { Weight = 2 }, encoded[1], encoded[2]];
        List<EncodedPair> copies = [encoded[0], encoded[0], encoded[1], encoded[2]];
        // The policy moves off its reference first (h ≠ 0): then the pairs' losses and gradients differ.
        (double Loss, double GradNorm) Dpo(List<EncodedPair> batch)
        {
            var policy = TinyTask.Load();
            var reference = new FrozenReference(policy.FrozenCopy());
            using (var move = new DpoTrainer(policy, reference, new DpoOptions(), Opt)) move.Step(TinyTask.Prefs(8, 9));
            using var t = new DpoTrainer(policy, reference, new DpoOptions(), Opt with { LearningRate = 1e-12 });
            var m = t.Step(batch);
            return (m["loss/dpo"], m["optim/grad_norm"]);
        }
        var (weightedDpo, copiesDpo, plainDpo) = (Dpo(weighted), Dpo(copies), Dpo(encoded));
        Assert.Equal(copiesDpo.Loss, weightedDpo.Loss, 1e-6);
        Assert.Equal(copiesDpo.GradNorm, weightedDpo.GradNorm, 1e-6);
        Assert.NotEqual(copiesDpo.Loss, plainDpo.Loss, 1e-4);

        // At the start policy = reference, so h = 0: a tie (target ½) is already where its loss is least, no gradient.
        var fresh = TinyTask.Load();
        using (var t = new DpoTrainer(fresh, new FrozenReference(fresh.FrozenCopy()), new DpoOptions(), Opt with { LearningRate = 1e-12 }))
        {
            Assert.True(t.Step(encoded.Select(p => p with { Target = 0.5 }).ToList())["optim/grad_norm"] < 1e-6);
            Assert.True(t.Step(encoded)["optim/grad_norm"] > 1e-3);
        }

        // The reward model: the same equivalence through RewardModelTrainer.
        double Rm(List<EncodedPair> batch)
        {
            var trunk = TinyTask.Load();
            var model = new RewardModel(trunk, new RewardHead(trunk.Model.Config.HiddenSize, 7));
            using var t = new RewardModelTrainer(model, new RewardModelOptions(), Opt with { LearningRate = 1e-12 });
            return t.Step(batch)["loss/reward_model"];
        }
        Assert.Equal(Rm(copies), Rm(weighted), 1e-6);
        Assert.NotEqual(Rm(copies), Rm(encoded), 1e-6);
    }

    [Fact]
    public void Grpo_step_changes_every_parameter()
    {
        var policy = TinyTask.Load();
        var experience = Rollouts(policy, 8, group: 4);
        using var t = new GrpoTrainer(policy, new FrozenReference(policy.FrozenCopy()), new GrpoOptions { GroupSize = 4 }, Opt);
        var snap = Snapshot(policy.Model.named_parameters());
        t.Step(experience);
        AssertAllChanged(snap);
    }

    [Fact]
    public void Distill_step_changes_every_student_parameter_and_no_teacher_parameter()
    {
        var student = TinyTask.Load();
        var teacher = TinyTask.Load();
        using (no_grad()) foreach (var p in teacher.Model.parameters()) p.add_(randn_like(p) * 0.1);
        var snap = Snapshot(student.Model.named_parameters());
        var teacherSnap = Snapshot(teacher.Model.named_parameters());
        using var t = new DistillTrainer(student, teacher, new DistillOptions(), Opt);
        t.Step(TinyTask.Sft(8, 3));
        AssertAllChanged(snap);
        Assert.All(teacherSnap, s => Assert.True(s.P.Equals(s.Before), $"teacher parameter {s.Name} changed"));
    }

    [Fact]
    public void With_lora_only_adapters_change_and_the_reference_is_the_base()
    {
        var policy = TinyTask.Load();
        var adapters = LoraAdapters.Apply(policy.Model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["c_attn", "c_proj", "c_fc"] });
        foreach (var (name, p) in policy.Model.named_parameters()) if (!name.Contains(".lora_")) p.requires_grad = false;
        var baseSnap = Snapshot(policy.Model.named_parameters().Where(p => !p.name.Contains(".lora_")));
        var loraSnap = Snapshot(policy.Model.named_parameters().Where(p => p.name.Contains(".lora_")));
        var reference = new AdapterReference(policy, adapters);
        using var t = new DpoTrainer(policy, reference, new DpoOptions(), Opt, adapters.Parameters());
        var data = TinyTask.Prefs(8, 4);
        t.Step(data);
        t.Step(data);   // lora_A first moves on the second step: B starts at zero, so A's first gradient is zero
        AssertAllChanged(loraSnap);
        Assert.All(baseSnap, s => Assert.True(s.P.Equals(s.Before), $"base parameter {s.Name} changed"));

        // Adapters disabled computes the base model: equal to a frozen copy without adapters.
        var encoded = data.Select(d => policy.Encoder.PromptCompletion(d.Item1, d.Item2)).ToList();
        var prompts = encoded.Select(e => e.Prompt).ToList();
        var completions = encoded.Select(e => e.Completion).ToList();
        var viaAdapters = reference.LogProbs(prompts, completions);
        using var plain = TinyTask.Load().LogProbsOf(prompts, completions);
        Assert.True(viaAdapters.allclose(plain.LogProbs, atol: 1e-5));
    }
}
