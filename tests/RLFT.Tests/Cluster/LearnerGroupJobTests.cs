using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Actors.WeightSync;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Cluster;

/// <summary>
/// <c>learners = N</c> in a job: N learner replicas in one process, each training its share of every batch, end a job
/// with the weights one learner reaches (within 1e-5 relative), and the replicas are bitwise equal to each other.
/// Jobs run as the plain loop (rollouts are then the same in both runs: same seeds, one batch at a time), and once
/// through the actors. Clipping is on (max-grad-norm 0.5), so a member that trained on the whole batch instead of its
/// share, or a sum that counted a share twice, changes the update; Adam's ε is 1e-6 for the reason
/// <see cref="Training.LearnerGroupTests"/> gives.
/// </summary>
public class LearnerGroupJobTests(ITestOutputHelper output)
{
    const string Optimizer = "optimizer { lr = 2e-3, max-grad-norm = 0.5, eps = 1e-6, warmup-steps = 0, schedule = constant }";
    const string Rewards = "rewards { components = [ { name = task, source = function, function = review-task }\n { name = length, source = length, unit = characters, target = 12, weight = 0.5 } ] }";

    const string Sft = "{ kind = sft, data = \"builtin:sft\", steps = 3, batch-size = 6\n " + Optimizer + "\n}";
    const string Dpo = "{ kind = dpo, data = \"builtin:preferences\", steps = 3, batch-size = 6\n dpo { beta = 0.1 }\n " + Optimizer + "\n}";
    const string RewardModel = "{ kind = reward-model, data = \"builtin:preferences\", steps = 3, batch-size = 6\n " + Optimizer + "\n}";
    const string Ppo = "{ kind = ppo, data = \"builtin:prompts\", eval-data = \"builtin:eval-prompts\", steps = 3, batch-size = 6\n sampling { max-new-tokens = 8 }\n ppo { epochs = 1, mini-batches = 1 }\n "
        + Rewards + "\n " + Optimizer + "\n}";
    const string Grpo = "{ kind = grpo, data = \"builtin:prompts\", eval-data = \"builtin:eval-prompts\", steps = 3, batch-size = 6\n sampling { max-new-tokens = 8 }\n grpo { group-size = 2 }\n "
        + Rewards + "\n " + Optimizer + "\n}";

    /// <summary>The weights of every learner a job made (by rank), taken when the job lets go of its learner, and the weights it started from.</summary>
    sealed class Capture : IEngineFactory
    {
        readonly TorchEngineFactory _inner = new();
        /// <summary>Moves one weight of the last replica by this much as the learner is made (0: none): the replicas then differ.</summary>
        public float Perturb { get; init; }
        public List<List<(string Name, Tensor Value)>> Members { get; } = [];
        public List<(string Name, Tensor Value)> Start { get; private set; } = [];
        public List<(string Name, Tensor Value)>? RewardModel { get; private set; }
        public List<TimeSpan> Communication { get; } = [];
        /// <summary>The figures of every training step the job recorded (metrics.jsonl), in order.</summary>
        public List<Dictionary<string, double>> Steps { get; } = [];

        public ILearnerEngine CreateLearner(JobSpec job, string? resumeFrom = null)
        {
            var engine = _inner.CreateLearner(job, resumeFrom);
            Start = Weights(Learners(engine)[0]);
            if (Perturb != 0)
                using (no_grad()) Learners(engine)[^1].Policy.Model.parameters().First().view(-1)[0].add_(Perturb);
            return new Decorated(engine, this);
        }

        public IRolloutEngine CreateRollout(JobSpec job, int index) => _inner.CreateRollout(job, index);
        public IRewardEngine CreateReward(JobSpec job, int index, Rlft.Reward.Sources.IHumanRatingPort? humanRatings) => _inner.CreateReward(job, index, humanRatings);

        static TorchLearnerEngine[] Learners(ILearnerEngine e) =>
            e is LearnerGroupEngine g ? g.Members.Cast<TorchLearnerEngine>().ToArray() : [(TorchLearnerEngine)e];

        static List<(string Name, Tensor Value)> Weights(TorchLearnerEngine e) =>
            e.Policy.Model.named_parameters().Select(p => (p.name, p.parameter.detach().clone())).ToList();

        void Take(ILearnerEngine engine)
        {
            var learners = Learners(engine);
            Members.AddRange(learners.Select(Weights));
            if (learners[0].TrainedRewardModel is { } rm)
                RewardModel = rm.Trunk.Model.named_parameters().Select(p => (p.name, p.parameter.detach().clone()))
                    .Concat(rm.Head.named_parameters().Select(p => ("head." + p.name, p.parameter.detach().clone()))).ToList();
            if (engine is LearnerGroupEngine group) Communication.AddRange(Enumerable.Range(0, group.Size).Select(group.CommunicationTime));
        }

        /// <summary>The job's learner, whose weights are taken as the job disposes it.</summary>
        sealed class Decorated(ILearnerEngine inner, Capture capture) : ILearnerEngine
        {
            public long PolicyVersion => inner.PolicyVersion;
            public long RewardModelVersion => inner.RewardModelVersion;
            public bool ExportsAdapterOnly => inner.ExportsAdapterOnly;
            public long AdapterBaseVersion => inner.AdapterBaseVersion;
            public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken ct) => inner.RunOfflineStage(stage, progress, ct);
            public void BeginOnlineStage(StageSpec stage, bool resume = false) => inner.BeginOnlineStage(stage, resume);
            public PolicyUpdated Train(StageSpec stage, TrainOn experience) => inner.Train(stage, experience);
            public byte[] ExportWeights(WeightKind kind) => inner.ExportWeights(kind);
            public LocalWeights? ShareWeights(WeightKind kind) => inner.ShareWeights(kind);
            public byte[] ExportAdapterBase() => inner.ExportAdapterBase();
            public LocalWeights? ShareAdapterBase() => inner.ShareAdapterBase();
            public EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts) => inner.Evaluate(stage, label, prompts);
            public void SaveCheckpoint(string directory) => inner.SaveCheckpoint(directory);
            public void Dispose() { capture.Take(inner); inner.Dispose(); }
        }
    }

    static Capture RunPlain(string stages, int learners, string extra = "")
    {
        var job = JobHarness.Job(stages, extra: $"learners = {learners}\n max-policy-lag = 0\n {extra}");
        Assert.Equal(learners, job.Learners);
        var capture = new Capture();
        PlainLoop.Run(job, capture);
        Assert.Equal(learners, capture.Members.Count);
        foreach (var line in JobHarness.TrainingSteps(job.RunDirectory))
            capture.Steps.Add(System.Text.Json.JsonDocument.Parse(line).RootElement.EnumerateObject()
                .Where(p => p.Value.ValueKind == System.Text.Json.JsonValueKind.Number).ToDictionary(p => p.Name, p => p.Value.GetDouble()));
        return capture;
    }

    /// <summary>
    /// Every step's figures as the solo learner's (losses, statistics, the gradient norm before clipping) within 1e-4
    /// relative: a member that trained on the whole batch, or a share counted twice, shows here even where Adam and
    /// clipping hide a uniformly scaled gradient from the weights. Timings are not compared.
    /// </summary>
    static void AssertSameFigures(Capture solo, Capture group, string what)
    {
        Assert.Equal(solo.Steps.Count, group.Steps.Count);
        Assert.NotEmpty(solo.Steps);
        for (int s = 0; s < solo.Steps.Count; s++)
            foreach (var (key, expected) in solo.Steps[s].Where(kv => !kv.Key.StartsWith("timing/", StringComparison.Ordinal) && kv.Key != "rollout/tokens_per_second"))
            {
                Assert.True(group.Steps[s].TryGetValue(key, out var actual), $"{what}: step {s + 1} has no {key} with learners");
                Assert.True(Math.Abs(actual - expected) <= 1e-4 * Math.Max(1e-2, Math.Abs(expected)), $"{what}: step {s + 1}: {key} = {actual} with learners, {expected} with one learner");
            }
    }

    /// <summary>Every replica equals the solo learner within 1e-5 relative (per tensor, in norm) and replica 0 bitwise.</summary>
    void AssertSame(Capture solo, Capture group, string what)
    {
        int n = group.Members.Count;
        var expected = solo.Members[0];
        double moved = expected.Zip(solo.Start, (x, y) => (x.Value - y.Value).abs().max().ToDouble()).Max();
        Assert.True(moved > 1e-4, $"{what}: the solo learner barely moved ({moved:g3}): the comparison would prove nothing");
        Assert.All(group.Communication, t => Assert.True(t > TimeSpan.Zero, $"{what}: a member never summed with the group"));
        double worst = 0;
        for (int r = 0; r < n; r++)
        {
            var weights = group.Members[r];
            Assert.Equal(expected.Select(w => w.Name), weights.Select(w => w.Name));
            for (int i = 0; i < expected.Count; i++)
            {
                var (name, e) = expected[i];
                double scale = e.norm().ToDouble(), diff = (weights[i].Value - e).norm().ToDouble();
                worst = Math.Max(worst, diff / scale);
                Assert.True(diff <= 1e-5 * scale, $"{what}: learner {r} of {n}: {name} differs from the solo learner's by {diff:g3} (‖w‖ {scale:g3})");
                if (r > 0) Assert.True(group.Members[0][i].Value.bytes.SequenceEqual(weights[i].Value.bytes), $"{what}: learner {r} of {n}: {name} is not bitwise equal to the leader's");
            }
        }
        output.WriteLine($"{what}, {n} learners: worst ‖w_N − w_1‖/‖w_1‖ = {worst:g3}");
    }

    [Theory]
    [InlineData("sft", 2)]
    [InlineData("sft", 3)]
    [InlineData("dpo", 2)]
    [InlineData("dpo", 3)]
    [InlineData("ppo", 2)]
    [InlineData("ppo", 3)]
    [InlineData("grpo", 2)]
    [InlineData("grpo", 3)]
    public void A_job_with_n_learners_ends_with_one_learners_weights(string kind, int n)
    {
        string stages = kind switch { "sft" => Sft, "dpo" => Dpo, "ppo" => Ppo, _ => Grpo };
        var (solo, group) = (RunPlain(stages, 1), RunPlain(stages, n));
        AssertSame(solo, group, kind);
        AssertSameFigures(solo, group, kind);
    }

    /// <summary>Distillation from a teacher of the student's shape and tokenizer, other weights (the student's init seed is the job's, 3).</summary>
    [Fact]
    public void A_distillation_stage_with_two_learners_ends_with_one_learners_weights()
    {
        string teacher = Directory.CreateTempSubdirectory("rlft-teacher").FullName;
        Rlft.Policy.Models.ModelPresets.Write("gpt2", "tiny", teacher, seed: 11, corpus: Rlft.Rollout.Tasks.ReviewTask.TokenizerCorpus(3));
        string stage = $"{{ kind = distill, data = \"builtin:sft\", steps = 3, batch-size = 6\n teacher {{ path = \"{teacher}\" }}\n {Optimizer}\n}}";
        var (solo, group) = (RunPlain(stage, 1), RunPlain(stage, 2));
        AssertSame(solo, group, "distill");
        AssertSameFigures(solo, group, "distill");
    }

    /// <summary>
    /// The reward model (its trunk starts as the policy, its head from the seed): equal within 1e-5 relative over all its
    /// weights, and every tensor within 1e-3 of its own update (its biases are near zero, so a per-tensor norm would
    /// measure rounding noise that Adam turns into steps); the replicas' reward models are not compared (only the
    /// leader's is used).
    /// </summary>
    [Fact]
    public void A_reward_model_stage_trains_the_same_reward_model_with_two_learners()
    {
        var (solo, group) = (RunPlain(RewardModel, 1), RunPlain(RewardModel, 2));
        var (a, b) = (solo.RewardModel!, group.RewardModel!);
        Assert.Equal(a.Select(w => w.Name), b.Select(w => w.Name));
        Assert.All(group.Communication, t => Assert.True(t > TimeSpan.Zero, "a member never summed with the group"));
        AssertSameFigures(solo, group, "reward model");
        var start = solo.Start.ToDictionary(w => w.Name, w => w.Value);
        double total = 0, norm = 0, worstUpdate = 0, moved = 0;
        foreach (var ((name, x), (_, y)) in a.Zip(b))
        {
            double diff = (x - y).norm().ToDouble();
            (total, norm) = (total + diff * diff, norm + Math.Pow(x.norm().ToDouble(), 2));
            if (!start.TryGetValue(name, out var w0)) continue;
            double update = (x - w0).norm().ToDouble();
            moved = Math.Max(moved, update);
            worstUpdate = Math.Max(worstUpdate, diff / Math.Max(update, 1e-30));
            Assert.True(diff <= 1e-3 * update, $"reward model {name} differs between one and two learners by {diff:g3} (its update ‖Δw‖ {update:g3})");
        }
        Assert.True(moved > 1e-3, $"the reward model barely moved ({moved:g3})");
        Assert.True(Math.Sqrt(total) <= 1e-5 * Math.Sqrt(norm), $"the reward models differ by {Math.Sqrt(total):g3} (‖w‖ {Math.Sqrt(norm):g3})");
        output.WriteLine($"reward model, 2 learners: ‖w_2 − w_1‖/‖w_1‖ = {Math.Sqrt(total / norm):g3}, worst per-tensor ‖w_2 − w_1‖/‖w_1 − w_0‖ = {worstUpdate:g3}");
    }

    [Fact]
    public async Task A_ppo_job_with_two_learners_runs_through_the_actors_and_its_replicas_stay_equal()
    {
        var job = JobHarness.Job(string.Join("\n", Sft, Ppo), extra: "learners = 2");
        var capture = new Capture();
        await using (var node = RlftNode.Create(new NodeOptions { Job = job, Roles = ["learner", "rollout", "reward"], ExtraHocon = JobHarness.TestHocon }, capture))
        {
            await node.StartAsync(TestContext.Current.CancellationToken);
            var finished = await node.Finished.WaitAsync(TimeSpan.FromMinutes(4), TestContext.Current.CancellationToken);
            Assert.True(finished.Succeeded, finished.Message);
        }
        Assert.Equal(2, capture.Members.Count);
        for (int i = 0; i < capture.Members[0].Count; i++)
            Assert.True(capture.Members[0][i].Value.bytes.SequenceEqual(capture.Members[1][i].Value.bytes), $"{capture.Members[0][i].Name} differs between the replicas");
        // The leader's steps carry the group's figures.
        Assert.Contains(JobHarness.TrainingSteps(job.RunDirectory), l => l.Contains("\"learners/size\":2", StringComparison.Ordinal));
    }

    [Fact]
    public void Replicas_that_drift_apart_stop_the_job_at_the_next_weight_check()
    {
        var job = JobHarness.Job(Sft.Replace("steps = 3", "steps = 4"), extra: "learners = 2\n group-check-every = 2");
        var e = Assert.ThrowsAny<Exception>(() => PlainLoop.Run(job, new Capture { Perturb = 1e-4f }));
        output.WriteLine(e.Message);
        Assert.Contains("the learners' weights differ after optimizer step 2", e.Message);
        // Equal replicas pass the same checks (every step here).
        var fine = JobHarness.Job(Sft, extra: "learners = 2\n group-check-every = 1");
        PlainLoop.Run(fine, new Capture());
    }

    [Fact]
    public void Replicas_that_start_from_different_weights_are_refused_before_the_first_step()
    {
        var job = JobHarness.Job(Sft, extra: "learners = 2");
        var e = Assert.ThrowsAny<Exception>(() => new LearnerGroupEngine(job, g =>
        {
            var engine = new TorchLearnerEngine(job, null, g);
            if (g.Rank == 1)
                using (no_grad()) engine.Policy.Model.parameters().First().view(-1)[0].add_(1e-4f);
            return engine;
        }));
        output.WriteLine(e.Message);
        Assert.Contains("the learners start from different weights", e.Message);
    }
}
