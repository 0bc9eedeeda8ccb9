using FsCheck.Xunit;
using Rlft.Policy.Chat;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>The outer loop of meta-learning and federated rounds: Reptile, FedAvg and FedAdam against hand computations.</summary>
public class OuterLoopTests
{
    /// <summary>Task t's loss is ½‖θ − cₜ‖²; its inner loop is k steps of plain gradient descent at rate α.</summary>
    sealed class QuadraticTask(string id, float[] target, int steps, double alpha, double weight = 1) : IParticipant
    {
        public string Id => id;

        public ParticipantUpdate Run(WeightSet global, int round)
        {
            using var theta = new Parameter(global["theta"].clone());
            var named = new List<(string, Parameter)> { ("theta", theta) };
            using var c = tensor(target);
            for (int s = 0; s < steps; s++)
            {
                using var scope = NewDisposeScope();
                var loss = 0.5 * (theta - c).square().sum();
                loss.backward();
                using (no_grad()) theta.sub_(theta.grad! * alpha);
                theta.grad!.zero_();
            }
            using var adapted = WeightSet.Snapshot(named);
            return new ParticipantUpdate(id, global.DeltaTo(adapted), weight, new Dictionary<string, double> { ["inner/steps"] = steps });
        }
    }

    static WeightSet Global(params float[] theta)
    {
        using var p = new Parameter(tensor(theta));
        return WeightSet.Snapshot([("theta", p)]);
    }

    static float[] Values(WeightSet w) => w["theta"].data<float>().ToArray();

    [Fact]
    public void Reptile_outer_step_matches_the_hand_computation_on_two_parameters()
    {
        // θ₀ = (1, −2); tasks c₁ = (3, 0), c₂ = (−1, 4); k = 2 steps at α = 0.5: θₖ = c + (1 − α)ᵏ(θ₀ − c) = c + ¼(θ₀ − c).
        // Task 1: (3, 0) + ¼(−2, −2) = (2.5, −0.5); task 2: (−1, 4) + ¼(2, −6) = (−0.5, 2.5).
        // Mean update: ((1.5, 1.5) + (−1.5, 4.5)) / 2 = (0, 3); ε = 0.1: θ₁ = (1, −2) + 0.1·(0, 3) = (1, −1.7).
        using var global = Global(1, -2);
        var loop = new OuterLoop(Aggregation.Mean, new ServerSgd(0.1));
        var metrics = loop.Round(global, [new QuadraticTask("t1", [3, 0], 2, 0.5), new QuadraticTask("t2", [-1, 4], 2, 0.5)], 0);
        var theta = Values(global);
        Assert.Equal(1.0, theta[0], 6);
        Assert.Equal(-1.7, theta[1], 6);
        Assert.Equal(3.0, metrics["outer/update_norm"], 5);
        Assert.Equal(2, metrics["outer/participants"]);
        Assert.Equal(2, metrics["inner/steps"]);
    }

    [Fact]
    public void FedAvg_weights_clients_by_their_examples()
    {
        // One step at α = 1 moves each client to its target: updates (3, 0) − θ and (−1, 4) − θ from θ = 0,
        // weighted 3 : 1 → (3·3 + 1·(−1)) / 4 = 2, (0 + 4) / 4 = 1; lr 1 takes θ there.
        using var global = Global(0, 0);
        var loop = new OuterLoop(Aggregation.WeightedMean, new ServerSgd(1));
        loop.Round(global, [new QuadraticTask("a", [3, 0], 1, 1.0, weight: 3), new QuadraticTask("b", [-1, 4], 1, 1.0, weight: 1)], 0);
        Assert.Equal([2f, 1f], Values(global));
    }

    [Fact]
    public void FedAdam_step_matches_the_hand_computation()
    {
        // Δ = (2, −1), β₁ = 0.9, β₂ = 0.99, τ = 1e-3, lr = 0.1: m = 0.1Δ = (0.2, −0.1), v = 0.01Δ² = (0.04, 0.01),
        // θ += 0.1 · m / (√v + τ) = 0.1 · (0.2 / 0.201, −0.1 / 0.101).
        using var global = Global(0, 0);
        using var server = new ServerAdam(0.1);
        using var update = Global(2, -1);
        server.Step(global, update);
        var theta = Values(global);
        Assert.Equal(0.1 * 0.2 / 0.201, theta[0], 6);
        Assert.Equal(0.1 * -0.1 / 0.101, theta[1], 6);
    }

    [Property(MaxTest = 40)]
    public void The_aggregate_does_not_depend_on_the_order_updates_arrive_in(int seed, byte count)
    {
        int n = 2 + count % 6;
        var rng = new Random(seed);
        using var like = Global(0, 0, 0);
        var updates = Enumerable.Range(0, n).Select(i =>
        {
            using var p = new Parameter(tensor(Enumerable.Range(0, 3).Select(_ => (float)(rng.NextDouble() * 2e3 - 1e3)).ToArray()));
            return new ParticipantUpdate($"p{i}", WeightSet.Snapshot([("theta", p)]), 1 + rng.Next(100), new Dictionary<string, double>());
        }).ToList();
        var shuffled = updates.OrderBy(_ => rng.Next()).ToList();
        foreach (var aggregation in new[] { Aggregation.Mean, Aggregation.WeightedMean })
        {
            using var a = OuterLoop.Aggregate(like, updates, aggregation);
            using var b = OuterLoop.Aggregate(like, shuffled, aggregation);
            Assert.Equal(Values(a), Values(b));   // bitwise: the sum runs in the ids' order
        }
        foreach (var u in updates) u.Dispose();
    }

    [Fact]
    public void One_task_at_outer_rate_one_equals_plain_fine_tuning()
    {
        using var scope = NewDisposeScope();
        var data = ReviewTask.SftCorpus(64, 3).ToList();
        var options = new Rlft.Policy.Training.OptimizerOptions { LearningRate = 1e-3, TotalSteps = 4, WarmupSteps = 0 };

        // Plain: four SFT steps over the same batches.
        var plain = TinyTask.Load();
        var examples = data.Select(e => plain.Encoder.PromptCompletion(e.Prompt, e.Completion)).ToList();
        var batches = new SftParticipant("x", plain, examples, options, steps: 4, batchSize: 8).NextBatches();
        using (var sft = new SftTrainer(plain, options))
            foreach (var b in batches) sft.Step(b);

        // Reptile with one task, ε = 1: the global weights become the task's adapted weights.
        var meta = TinyTask.Load();
        var task = new SftParticipant("task", meta, examples, options, steps: 4, batchSize: 8);
        using var global = WeightSet.Snapshot(Rlft.Policy.Training.Regularization.TrainableParameters.Of(meta.Model));
        new OuterLoop(Aggregation.Mean, new ServerSgd(1)).Round(global, [task], 0);

        var expected = plain.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        double worst = global.Items.Max(x => (x.Value - expected[x.Name]).abs().max().item<float>());
        Assert.True(worst < 1e-6, $"largest difference {worst}");
        // And it really trained: the weights moved.
        using var start = WeightSet.Snapshot(Rlft.Policy.Training.Regularization.TrainableParameters.Of(TinyTask.Load().Model));
        Assert.True(start.DeltaTo(global).Norm() > 1e-3);
    }
    [Theory]
    [InlineData("Linear", 0)]
    [InlineData("Linear", 3)]
    [InlineData("Cosine", 2)]
    public void A_federated_clients_schedule_spans_the_rounds_and_a_meta_tasks_restarts_every_round(string schedule, int warmup)
    {
        var options = new Rlft.Policy.Training.OptimizerOptions
        {
            LearningRate = 1e-3, Schedule = Enum.Parse<Rlft.Policy.Training.LrSchedule>(schedule), WarmupSteps = warmup, MinLrRatio = 0.1,
        };
        var policy = TinyTask.Load();
        var client = new SftParticipant("c", policy, [], options, steps: 4, batchSize: 8) { ScheduleRounds = 5 };
        var task = new SftParticipant("t", policy, [], options, steps: 4, batchSize: 8);
        using var probe = new TorchSharp.Modules.Parameter(zeros(1));
        double Rate(Rlft.Policy.Training.OptimizerOptions o, int step)
        {
            using var optimizer = new TrainingOptimizer([probe], o);
            return optimizer.LearningRateAt(step);
        }
        var central = options with { TotalSteps = 20 };
        for (int round = 0; round < 5; round++)
            for (int k = 0; k < 4; k++)
            {
                // The client's k-th local update of a round is the central run's update 4·round + k.
                Assert.Equal(Rate(central, 4 * round + k), Rate(client.OptimizerFor(round), k), 12);
                // A meta-learning task's inner loop runs the schedule over its own 4 steps, the same every round.
                Assert.Equal(Rate(options with { TotalSteps = 4, WarmupSteps = Math.Min(warmup, 3) }, k), Rate(task.OptimizerFor(round), k), 12);
            }
        Assert.True(Rate(client.OptimizerFor(4), 3) < Rate(client.OptimizerFor(0), Math.Max(warmup, 1) - 1) * 0.5, "the rate decays over the rounds");
    }
}
