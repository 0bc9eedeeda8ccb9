using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using Rlft.Policy.Lora;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>
/// PPO with one minibatch and GRPO take the behaviour log-probs (and PPO's values) from the first update's own training
/// pass instead of a separate eval-mode pass: one forward pass fewer per step. The step must come out as the one with
/// the separate pass: the same weights after it and the same statistics.
/// </summary>
public class BehaviourPassTests
{
    static readonly Rlft.Policy.Training.OptimizerOptions Opt = new() { LearningRate = 1e-2, MaxGradNorm = 1, Schedule = LrSchedule.Constant };
    const double Tolerance = 2e-5;

    static List<Experience> Rollouts(PolicyModel policy, int n, int group)
    {
        var prompts = ReviewTask.ReviewPrompts(n / group, 7).SelectMany(p => Enumerable.Repeat((p.Prompt, p.Answer), group)).ToList();
        var (_, tokens, logps) = Evaluator.Sample(policy, prompts, new GenerationOptions { MaxNewTokens = 8, Seed = 3 });
        return prompts.Select((p, i) => new Experience(policy.EncodePrompt(p.Prompt), tokens[i], logps[i], (i * 7 % 5) * 0.3f, i / group)).ToList();
    }

    /// <summary>
    /// The statistics agree to <see cref="Tolerance"/>; the weights agree to 1e-3 of how far the step moved them (AdamW's
    /// first update divides each gradient by its own size, so an entry whose gradient is rounding noise moves by ±lr
    /// either way: elementwise agreement would test the rounding, not the step).
    /// </summary>
    static void AssertSameStep(Dictionary<string, double> separate, Dictionary<string, double> reused, List<(string, TorchSharp.Modules.Parameter, Tensor)> a,
        List<(string, TorchSharp.Modules.Parameter, Tensor)> b)
    {
        Assert.Equal(separate.Keys.Order(), reused.Keys.Order());
        foreach (var (k, v) in separate)
            Assert.True(Math.Abs(v - reused[k]) <= Tolerance * Math.Max(1, Math.Abs(v)), $"{k}: separate pass {v}, reused pass {reused[k]}");
        double moved = 0, apart = 0;
        foreach (var ((name, p, before), (_, q, _)) in a.Zip(b))
        {
            moved += (p - before).square().sum().ToDouble();
            apart += (p - q).square().sum().ToDouble();
        }
        Assert.True(moved > 0, "the step moved nothing");
        Assert.True(Math.Sqrt(apart / moved) <= 1e-3, $"the weights differ by {Math.Sqrt(apart / moved):E2} of the step");
    }

    static List<(string, TorchSharp.Modules.Parameter, Tensor)> Snapshot(IEnumerable<(string, TorchSharp.Modules.Parameter)> ps) =>
        ps.Select(x => (x.Item1, x.Item2, x.Item2.detach().clone())).ToList();

    [Theory]
    [InlineData(1, 0.0)]
    [InlineData(3, 0.0)]
    [InlineData(2, 0.01)]
    public void A_ppo_step_with_the_reused_pass_equals_the_step_with_a_separate_one(int epochs, double entropyCoef)
    {
        var (p1, p2) = (TinyTask.Load(), TinyTask.Load());
        var v1 = new ValueHead(p1.Model.Config.HiddenSize);
        var v2 = new ValueHead(p2.Model.Config.HiddenSize);
        using (no_grad()) foreach (var ((_, x), (_, y)) in v1.named_parameters().Zip(v2.named_parameters())) y.copy_(x);
        var experience = Rollouts(p1, 8, 1);
        var options = new PpoOptions { Epochs = epochs, EntropyCoef = entropyCoef, AdaptiveKl = false };
        using var separate = new PpoTrainer(p1, v1, new FrozenReference(p1.FrozenCopy()), options with { ReuseBehaviourPass = false }, Opt, seed: 5);
        using var reused = new PpoTrainer(p2, v2, new FrozenReference(p2.FrozenCopy()), options, Opt, seed: 5);
        // Two steps: the minibatch order drawn for later epochs and steps is the same.
        for (int step = 0; step < 2; step++)
        {
            var (w1, w2) = (Snapshot(p1.Model.named_parameters().Concat(v1.named_parameters())), Snapshot(p2.Model.named_parameters().Concat(v2.named_parameters())));
            AssertSameStep(separate.Step(experience), reused.Step(experience), w1, w2);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_grpo_step_with_the_reused_pass_equals_the_step_with_a_separate_one(int epochs)
    {
        var (p1, p2) = (TinyTask.Load(), TinyTask.Load());
        var experience = Rollouts(p1, 8, 4);
        var options = new GrpoOptions { GroupSize = 4, Epochs = epochs };
        using var separate = new GrpoTrainer(p1, new FrozenReference(p1.FrozenCopy()), options with { ReuseBehaviourPass = false }, Opt);
        using var reused = new GrpoTrainer(p2, new FrozenReference(p2.FrozenCopy()), options, Opt);
        var (w1, w2) = (Snapshot(p1.Model.named_parameters()), Snapshot(p2.Model.named_parameters()));
        AssertSameStep(separate.Step(experience), reused.Step(experience), w1, w2);
    }

    [Fact]
    public void With_lora_and_an_adapter_reference_the_reused_pass_gives_the_same_steps()
    {
        var (p1, p2) = (TinyTask.Load(), TinyTask.Load());
        var config = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["c_attn"] };
        var a1 = LoraAdapters.Apply(p1.Model, config);
        var a2 = LoraAdapters.Apply(p2.Model, config);
        using (no_grad())
            foreach (var ((name, x), (_, y)) in p1.Model.named_parameters().Zip(p2.Model.named_parameters()))
            {
                y.copy_(x);   // the same random A
                if (!name.Contains(".lora_")) { x.requires_grad = false; y.requires_grad = false; }
            }
        var experience = Rollouts(p1, 8, 4);
        var options = new GrpoOptions { GroupSize = 4, Epochs = 2 };
        using var separate = new GrpoTrainer(p1, new AdapterReference(p1, a1), options with { ReuseBehaviourPass = false }, Opt, a1.Parameters());
        using var reused = new GrpoTrainer(p2, new AdapterReference(p2, a2), options, Opt, a2.Parameters());
        for (int step = 0; step < 2; step++)   // B starts at zero: A moves from the second step on
        {
            var (w1, w2) = (Snapshot(p1.Model.named_parameters().Where(p => p.name.Contains(".lora_"))), Snapshot(p2.Model.named_parameters().Where(p => p.name.Contains(".lora_"))));
            AssertSameStep(separate.Step(experience), reused.Step(experience), w1, w2);
        }
    }

    [Fact]
    public void Adapter_dropout_makes_a_training_pass_differ_from_an_eval_pass_so_it_is_not_reused()
    {
        var policy = TinyTask.Load();
        Assert.True(policy.TrainsDeterministically);
        var adapters = LoraAdapters.Apply(policy.Model, new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = ["c_attn"] });
        Assert.False(policy.TrainsDeterministically);
        using (adapters.Disabled()) Assert.True(policy.TrainsDeterministically);
    }
}
