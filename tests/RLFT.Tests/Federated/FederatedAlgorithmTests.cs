using FsCheck.Xunit;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Regularization;
using Rlft.Rollout.Tasks;
using Rlft.Tests.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Tests.Federated;

/// <summary>Federated optimization: the adaptive server optimizers, FedProx's term, client sampling and DP-FedAvg's clip and noise, against hand computations.</summary>
public class FederatedAlgorithmTests
{
    static WeightSet Set(params float[] theta)
    {
        using var p = new Parameter(tensor(theta));
        return WeightSet.Snapshot([("theta", p)]);
    }

    static float[] Values(WeightSet w) => w["theta"].data<float>().ToArray();

    static float[] Steps(IServerOptimizer server, params float[][] updates)
    {
        using var global = Set(0, 0);
        foreach (var u in updates) { using var d = Set(u); server.Step(global, d); }
        return Values(global);
    }

    [Fact]
    public void FedAdagrad_sums_squared_updates()
    {
        // β₁ = 0.9, τ = 1e-3, lr = 0.1; Δ₁ = (2, −1): m = (0.2, −0.1), v = (4, 1);
        // Δ₂ = (1, 1): m = 0.9m + 0.1Δ₂ = (0.28, 0.01), v = (5, 2). x = Σ lr · m / (√v + τ).
        using var server = new ServerAdagrad(0.1);
        var x = Steps(server, [2, -1], [1, 1]);
        Assert.Equal(0.1 * 0.2 / 2.001 + 0.1 * 0.28 / (Math.Sqrt(5) + 1e-3), x[0], 5);
        Assert.Equal(0.1 * -0.1 / 1.001 + 0.1 * 0.01 / (Math.Sqrt(2) + 1e-3), x[1], 5);
    }

    [Fact]
    public void FedYogi_moves_the_second_moment_by_steps_proportional_to_the_squared_update()
    {
        // β₂ = 0.99. Δ₁ = (2, −1): v = 0 − 0.01·(4, 1)·sign(0 − (4, 1)) = (0.04, 0.01) (as Adam);
        // Δ₂ = (1, 1): v = (0.04, 0.01) + 0.01·(1, 1) = (0.05, 0.02) (Adam: 0.99v + 0.01 = (0.0496, 0.0199));
        // Δ₃ = (0.1, 0): v = (0.05 − 0.01·0.01, 0.02) = (0.0499, 0.02) — v > Δ², so it shrinks; m₃ = (0.262, 0.009).
        using var server = new ServerYogi(0.1);
        var x = Steps(server, [2, -1], [1, 1], [0.1f, 0]);
        Assert.Equal(0.1 * (0.2 / 0.201 + 0.28 / (Math.Sqrt(0.05) + 1e-3) + 0.262 / (Math.Sqrt(0.0499) + 1e-3)), x[0], 5);
        Assert.Equal(0.1 * (-0.1 / 0.101 + 0.01 / (Math.Sqrt(0.02) + 1e-3) + 0.009 / (Math.Sqrt(0.02) + 1e-3)), x[1], 5);
        using var adam = new ServerAdam(0.1);
        Assert.NotEqual(x[0], Steps(adam, [2, -1], [1, 1], [0.1f, 0])[0]);
    }

    [Fact]
    public void FedProx_term_and_its_gradient_match_the_hand_computation()
    {
        // w = (1, 2), w_global = (0, −1), μ = 0.5: P = 0.25 · (1² + 3²) = 2.5; ∇P = μ(w − w_global) = (0.5, 1.5).
        using var w = new Parameter(tensor(new float[] { 1, 2 }));
        using var global = Set(0, -1);
        using var prox = new ProximalPenalty([("theta", w)], global, 0.5);
        using var penalty = prox.Penalty();
        Assert.Equal(2.5, penalty.item<float>(), 6);
        penalty.backward();
        Assert.Equal([0.5f, 1.5f], w.grad!.data<float>().ToArray());
        Assert.Equal("loss/prox", prox.Metric);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProximalPenalty([("theta", w)], global, -1));
    }

    [Fact]
    public void FedProx_keeps_a_client_nearer_the_global_weights()
    {
        using var scope = NewDisposeScope();
        var options = new Rlft.Policy.Training.OptimizerOptions { LearningRate = 1e-2, TotalSteps = 6, WarmupSteps = 0 };
        double Run(double mu, out ParticipantUpdate update)
        {
            var policy = TinyTask.Load();
            var examples = ReviewTask.SftCorpus(32, 5).Select(e => policy.Encoder.PromptCompletion(e.Prompt, e.Completion)).ToList();
            using var global = WeightSet.Snapshot(TrainableParameters.Of(policy.Model));
            update = new SftParticipant("c", policy, examples, options, steps: 6, batchSize: 8) { Mu = mu }.Run(global, 0);
            return update.Delta.Norm();
        }
        double free = Run(0, out var a), held = Run(50, out var b);
        // The first step starts at w = w_global, where the term and its gradient vanish: the same data loss.
        Assert.Equal(a.Metrics["inner/loss_first"], b.Metrics["inner/loss_first"], 5);
        Assert.True(held < 0.8 * free, $"update norm with μ = 50: {held}, without: {free}");
        a.Dispose(); b.Dispose();
    }

    [Property(MaxTest = 60)]
    public void Client_samples_are_distinct_available_clients_drawn_the_same_whatever_the_listing_order(int seed, byte n, byte k, byte round)
    {
        int count = 1 + n % 12, perRound = 1 + k % 8;
        var ids = Enumerable.Range(0, count).Select(i => $"client-{i}").ToList();
        var sampler = new ClientSampler(perRound, seed);
        var sample = sampler.Sample(ids, round);
        Assert.Equal(Math.Min(count, perRound), sample.Count);
        Assert.Equal(sample.Count, sample.Distinct().Count());
        Assert.All(sample, id => Assert.Contains(id, ids));
        var shuffled = ids.OrderBy(_ => new Random(seed).Next()).Reverse().ToList();
        Assert.Equal(sample, new ClientSampler(perRound, seed).Sample(shuffled, round));
    }

    [Fact]
    public void Client_sampling_is_uniform_and_a_retry_draws_afresh()
    {
        var ids = Enumerable.Range(0, 10).Select(i => $"c{i}").ToList();
        var sampler = new ClientSampler(3, seed: 7);
        var counts = ids.ToDictionary(i => i, _ => 0);
        for (int r = 0; r < 4000; r++) foreach (var id in sampler.Sample(ids, r)) counts[id]++;
        Assert.All(counts.Values, c => Assert.InRange(c, 1080, 1320));        // 1200 ± 10% (≈ 4.4 standard deviations)
        int same = Enumerable.Range(0, 200).Count(r => sampler.Sample(ids, r, 0).SequenceEqual(sampler.Sample(ids, r, 1)));
        Assert.True(same < 10, $"{same} of 200 retries drew the same sample");
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientSampler(0, 1));
    }

    [Property(MaxTest = 60)]
    public void Clipping_bounds_every_contribution_and_leaves_small_updates_alone(int seed, byte size)
    {
        var rng = new Random(seed);
        var privacy = new ClientPrivacy(clipNorm: 0.5 + rng.NextDouble(), noiseMultiplier: 1, delta: 1e-5);
        using var update = Set(Enumerable.Range(0, 1 + size % 20).Select(_ => (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-2, 3)))).ToArray());
        var before = Values(update);
        double norm = privacy.Clip(update);
        Assert.True(update.Norm() <= privacy.ClipNorm * (1 + 1e-6), $"norm {update.Norm()} above the clip {privacy.ClipNorm}");
        if (norm <= privacy.ClipNorm) Assert.Equal(before, Values(update));
        else Assert.Equal(privacy.ClipNorm, update.Norm(), tolerance: 1e-6 * privacy.ClipNorm);   // float32 sums: a relative bound, not rounding to places
    }

    static ParticipantUpdate Update(string id, double weight, params float[] delta) => new(id, Set(delta), weight, new Dictionary<string, double>());

    [Fact]
    public void Dp_fedavg_averages_clipped_updates_with_equal_weight()
    {
        // Clip 1: (3, 4) has norm 5 → (0.6, 0.8); (0.3, 0) stays. Equal weights despite 9 : 1 examples: mean (0.45, 0.4).
        using var global = Set(0, 0);
        using var loop = new OuterLoop(Aggregation.WeightedMean, new ServerSgd(1), new ClientPrivacy(1, 0, 1e-5));
        var metrics = loop.Apply(global, [Update("a", 9, 3, 4), Update("b", 1, 0.3f, 0)]);
        var x = Values(global);
        Assert.Equal(0.45, x[0], 6);
        Assert.Equal(0.4, x[1], 6);
        Assert.Equal(0.5, metrics["privacy/clipped_fraction"]);
    }

    [Fact]
    public void Dp_noise_on_the_mean_has_standard_deviation_sigma_clip_over_participants()
    {
        // σ = 1.5, C = 2, 4 participants sending zeros: every element of the mean is N(0, (1.5 · 2 / 4)²) = N(0, 0.75²).
        using var global = Set(new float[20_000]);
        using var loop = new OuterLoop(Aggregation.Mean, new ServerSgd(1), new ClientPrivacy(2, 1.5, 1e-5), noiseSeed: 11);
        loop.Apply(global, Enumerable.Range(0, 4).Select(i => Update($"p{i}", 1, new float[20_000])).ToList());
        var x = Values(global);
        double mean = x.Average(v => (double)v), std = Math.Sqrt(x.Average(v => (v - mean) * (v - mean)));
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(std, 0.75 * 0.97, 0.75 * 1.03);
    }

    [Property(MaxTest = 30)]
    public void The_private_aggregate_does_not_depend_on_arrival_order(int seed, byte count)
    {
        int n = 2 + count % 5;
        var rng = new Random(seed);
        var deltas = Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, 4).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray()).ToList();
        var order = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToList();
        float[] Run(IEnumerable<int> arrival)
        {
            using var global = Set(0, 0, 0, 0);
            using var loop = new OuterLoop(Aggregation.Mean, new ServerSgd(1), new ClientPrivacy(1, 0.7, 1e-5), noiseSeed: seed);
            var updates = arrival.Select(i => Update($"p{i}", 1 + i, deltas[i])).ToList();
            loop.Apply(global, updates);
            foreach (var u in updates) u.Dispose();
            return Values(global);
        }
        Assert.Equal(Run(Enumerable.Range(0, n)), Run(order));                // bitwise
    }

    [Fact]
    public void Privacy_parameters_out_of_range_are_refused_naming_the_key()
    {
        Assert.Contains("privacy.clip-norm", Assert.Throws<ArgumentOutOfRangeException>(() => new ClientPrivacy(0, 1, 1e-5)).Message);
        Assert.Contains("privacy.noise-multiplier", Assert.Throws<ArgumentOutOfRangeException>(() => new ClientPrivacy(1, -1, 1e-5)).Message);
        Assert.Contains("privacy.delta", Assert.Throws<ArgumentOutOfRangeException>(() => new ClientPrivacy(1, 1, 1)).Message);
    }
    [Fact]
    public void A_dpo_participants_reference_is_its_policy_at_the_rounds_start_adapters_included()
    {
        using var scope = NewDisposeScope();
        var policy = TinyTask.Load();
        var adapters = Rlft.Policy.Lora.LoraAdapters.Apply(policy.Model, new Rlft.Policy.Lora.LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["c_attn"] }, seed: 2);
        using (var g = new Generator(5))
        using (no_grad())
            foreach (var (_, layer) in adapters.Layers) layer.lora_B!.weight!.normal_(0, 0.05, generator: g);   // adapters away from zero, as after an SFT stage
        var pairs = TinyTask.Prefs(8, seed: 3).Select(p => new Rlft.Policy.Chat.EncodedPair(policy.Encoder.PromptCompletion(p.Item1, p.Item2), policy.Encoder.PromptCompletion(p.Item1, p.Item3))).ToList();
        var participant = new DpoParticipant("c", policy, pairs, new DpoOptions(), new Rlft.Policy.Training.OptimizerOptions { LearningRate = 1e-3 }, steps: 2, batchSize: 4);
        using var global = WeightSet.Snapshot(TrainableParameters.Of(policy.Model));
        using var update = participant.Run(global, 0);
        // Policy = reference at the first step: every pair's implicit reward margin is 0, the sigmoid loss ln 2.
        Assert.Equal(Math.Log(2), update.Metrics["inner/loss_first"], 5);
    }
}
