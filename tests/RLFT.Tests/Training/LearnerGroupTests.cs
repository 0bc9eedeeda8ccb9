using Rlft.Policy.Chat;
using Rlft.Policy.Collectives;
using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using Rlft.Policy.Lora;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using Rlft.Tests.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>
/// Data-parallel learner groups are exact: N in-process learners (threads), each training on its share of every
/// batch and summing gradients over the group, end with the weights one learner reaches on the whole batches
/// (within 1e-5 relative), and the replicas are bitwise equal to each other.
/// </summary>
public class LearnerGroupTests
{
    // Clipping on (the global norm must be used) and a warmup-free constant schedule.
    // Adam's ε at 1e-5: a gradient that is zero in exact arithmetic (the key bias of attention) is rounding noise of
    // 1e-10–1e-9 depending on the CPU's kernels, which ε = 1e-8 would turn into a full ±lr step of random sign (in the
    // solo run as much as in the group), and ε = 1e-6 still into steps of 1e-4–1e-3 lr (8e-7 in ‖Δ‖ of c_attn.bias on an
    // AMD EPYC with AVX-512, 1.7e-5 of its norm). With 1e-5 the worst tensor there is within 3.4e-6 of the solo run's.
    static readonly OptimizerOptions Opt = new() { LearningRate = 2e-3, MaxGradNorm = 0.5, Schedule = LrSchedule.Constant, Epsilon = 1e-5 };
    const int Steps = 2;

    /// <summary>A trainer made on the test thread (model copies and RNG-initialised parts are made in one place), stepped on a member's thread.</summary>
    sealed record Learner(Action<LearnerGroup> Join, Func<int, Dictionary<string, double>> Step, Func<IEnumerable<(string Name, Tensor Value)>> Weights, IDisposable Trainer);

    static (Dictionary<string, double> Metrics, List<(string Name, Tensor Value)> Weights) Train(Learner learner, LearnerGroup group)
    {
        learner.Join(group);
        Dictionary<string, double> metrics = [];
        for (int s = 0; s < Steps; s++) metrics = learner.Step(s);
        var weights = learner.Weights().Select(w => (w.Name, w.Value.detach().clone())).ToList();
        learner.Trainer.Dispose();
        return (metrics, weights);
    }

    static void AssertExact(int n, Func<Learner> make, params string[] sameMetrics)
    {
        var (soloMetrics, solo) = Train(make(), LearnerGroup.Solo);
        var learners = Enumerable.Range(0, n).Select(_ => make()).ToList();
        var replicas = GroupThreads.Run(n, g => Train(learners[g.Rank], g));
        var start = make().Weights().ToDictionary(w => w.Name, w => w.Value.detach().clone());
        double moved = solo.Max(w => (w.Value - start[w.Name]).abs().max().ToDouble());
        Assert.True(moved > 1e-4, $"the solo learner barely moved ({moved:g3}): the comparison would prove nothing");
        double worst = 0, worstUpdate = 0;
        for (int r = 0; r < n; r++)
        {
            var (metrics, weights) = replicas[r];
            Assert.Equal(solo.Select(w => w.Name), weights.Select(w => w.Name));
            for (int i = 0; i < solo.Count; i++)
            {
                var (name, expected) = solo[i];
                // Relative in norm: Adam turns float-level noise in a near-zero gradient element into a visible step of that element.
                double scale = expected.norm().ToDouble(), diff = (weights[i].Value - expected).norm().ToDouble();
                double update = (expected - start[name]).norm().ToDouble();
                worst = Math.Max(worst, diff / scale);
                worstUpdate = Math.Max(worstUpdate, diff / Math.Max(update, 1e-30));
                Assert.True(diff <= 1e-5 * scale, $"member {r} of {n}: {name} differs from the solo learner's by {diff:g3} (‖w‖ {scale:g3}, ‖update‖ {update:g3})");
                if (r > 0) Assert.True(replicas[0].Weights[i].Value.bytes.SequenceEqual(weights[i].Value.bytes), $"member {r} of {n}: {name} is not bitwise equal to member 0's");
            }
            foreach (var key in sameMetrics)
                Assert.True(Math.Abs(metrics[key] - soloMetrics[key]) <= 1e-4 * Math.Max(1e-3, Math.Abs(soloMetrics[key])), $"member {r} of {n}: {key} = {metrics[key]} vs the solo learner's {soloMetrics[key]}");
        }
        TestContext.Current.SendDiagnosticMessage($"n = {n}: worst ‖w_N − w_1‖/‖w_1‖ = {worst:g3}, worst ‖w_N − w_1‖/‖w_1 − w_0‖ = {worstUpdate:g3}\n");
    }

    static List<EncodedExample> SftBatch(PolicyModel policy, int step) =>
        TinyTask.Sft(12, 40 + step).Select(e => policy.Encoder.PromptCompletion(e.Item1, e.Item2)).ToList();

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Sft_with_n_learners_equals_one_learner(int n) => AssertExact(n, () =>
    {
        var policy = TinyTask.Load();
        var t = new SftTrainer(policy, Opt);
        return new Learner(g => t.Group = g, s => t.Step(SftBatch(policy, s)), () => Named(policy.Model.named_parameters()), t);
    }, "loss/sft", "sft/tokens", "optim/grad_norm");

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Dpo_with_n_learners_equals_one_learner_full_and_lora(int n)
    {
        List<EncodedPair> Pairs(PolicyModel policy, int step) => TinyTask.Prefs(12, 50 + step)
            .Select((p, i) => new EncodedPair(policy.Encoder.PromptCompletion(p.Item1, p.Item2), policy.Encoder.PromptCompletion(p.Item1, p.Item3)) with { Weight = 1 + i % 3 })
            .ToList();
        AssertExact(n, () =>
        {
            var policy = TinyTask.Load();
            var t = new DpoTrainer(policy, new FrozenReference(policy.FrozenCopy()), new DpoOptions(), Opt);
            return new Learner(g => t.Group = g, s => t.Step(Pairs(policy, s)), () => Named(policy.Model.named_parameters()), t);
        }, "loss/dpo", "rewards/margins", "optim/grad_norm");
        AssertExact(n, () =>
        {
            var policy = TinyTask.Load();
            var adapters = LoraAdapters.Apply(policy.Model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["c_attn", "c_proj", "c_fc"] });
            foreach (var (name, p) in policy.Model.named_parameters()) if (!name.Contains(".lora_")) p.requires_grad = false;
            var t = new DpoTrainer(policy, new AdapterReference(policy, adapters), new DpoOptions(), Opt, adapters.Parameters());
            return new Learner(g => t.Group = g, s => t.Step(Pairs(policy, s)), () => Named(policy.Model.named_parameters().Where(p => p.name.Contains(".lora_"))), t);
        }, "loss/dpo", "optim/grad_norm");
    }

    /// <summary>Sampled completions of varying lengths with distinct scores, grouped in runs of <paramref name="group"/>.</summary>
    static readonly Lazy<List<Experience>> Rollouts4 = new(() => Rollouts(12, 4));
    static readonly Lazy<List<Experience>> Rollouts1 = new(() => Rollouts(12, 1));

    static List<Experience> Rollouts(int n, int group)
    {
        var policy = TinyTask.Load();
        var prompts = ReviewTask.ReviewPrompts(n / group, 7).SelectMany(p => Enumerable.Repeat((p.Prompt, p.Answer), group)).ToList();
        var (_, tokens, logps) = Evaluator.Sample(policy, prompts, new GenerationOptions { MaxNewTokens = 10, Seed = 3, Temperature = 1.5 });
        // Completions cut to different lengths: the members' token shares then differ from 1/N, as the weighting must handle.
        return prompts.Select((p, i) =>
        {
            int length = Math.Min(tokens[i].Length, 2 + i * 5 % 9);
            return new Experience(policy.EncodePrompt(p.Prompt), tokens[i][..length], logps[i][..length], (i * 7 % 5) * 0.4f - 0.6f, i / group);
        }).ToList();
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Ppo_with_n_learners_equals_one_learner(int n) => AssertExact(n, () =>
    {
        var policy = TinyTask.Load();
        var value = new ValueHead(policy.Model.Config.HiddenSize);
        var options = new PpoOptions { Epochs = 2, MiniBatches = 2, AdaptiveKl = true, EntropyCoef = 0.01 };
        var t = new PpoTrainer(policy, value, new FrozenReference(policy.FrozenCopy()), options, Opt, seed: 5);
        var batch = Rollouts1.Value;
        return new Learner(g => t.Group = g, _ => t.Step(batch), () => Named(policy.Model.named_parameters()).Concat(Named(value.named_parameters()).Select(v => ("v_head." + v.Name, v.Value))), t);
    }, "loss/policy", "loss/value", "objective/kl", "objective/kl_coef", "objective/entropy", "policy/clipfrac", "optim/grad_norm");

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Grpo_with_n_learners_equals_one_learner_and_never_splits_a_group(int n) => AssertExact(n, () =>
    {
        var policy = TinyTask.Load();
        var t = new GrpoTrainer(policy, new FrozenReference(policy.FrozenCopy()), new GrpoOptions { GroupSize = 4, Epochs = 2, KlCoef = 0.04 }, Opt);
        var batch = Rollouts4.Value;
        return new Learner(g => t.Group = g, _ => t.Step(batch), () => Named(policy.Model.named_parameters()), t);
    }, "loss/total", "objective/kl", "optim/grad_norm");

    static IEnumerable<(string Name, Tensor Value)> Named(IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> ps) =>
        ps.Select(p => (p.name, (Tensor)p.parameter));
}
