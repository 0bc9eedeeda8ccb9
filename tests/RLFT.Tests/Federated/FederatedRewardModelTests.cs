using Rlft.Actors.Compute.Federated;
using Rlft.Actors.Coordination;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Lora;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Tests.Training;
using static TorchSharp.torch;

namespace Rlft.Tests.Federated;

/// <summary>
/// A federated reward-model stage's two sides without a cluster: the reward model the server and each client make
/// line up, one client's round under FedAvg is exactly that many offline Bradley–Terry steps, and LoRA adapters on the
/// trunk are merged into a plain trunk that scores as the adapted one did.
/// </summary>
public sealed class FederatedRewardModelTests
{
    static readonly OptimizerOptions Inner = new() { LearningRate = 5e-3, TotalSteps = 3, WarmupSteps = 0 };

    static List<EncodedPair> Pairs(PolicyModel policy, int n) => TinyTask.Prefs(n, seed: 4)
        .Select(p => new EncodedPair(policy.Encoder.PromptCompletion(p.Item1, p.Item2), policy.Encoder.PromptCompletion(p.Item1, p.Item3))).ToList();

    static float[] Flat(RewardModel rm) => rm.Trainable().SelectMany(p => p.Value.detach().cpu().data<float>().ToArray()).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void One_clients_fedavg_round_equals_its_local_steps_trained_offline(bool lora)
    {
        using var scope = NewDisposeScope();
        var config = lora ? new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["c_attn"] } : null;
        var policy = TinyTask.Load();
        var pairs = Pairs(policy, 12);
        using var server = new FederatedRewardModel(policy, policy.Encoder, config, seed: 7);
        var (clientPolicy, offlinePolicy) = (TinyTask.Load(), TinyTask.Load());
        using var client = new FederatedRewardModel(clientPolicy, clientPolicy.Encoder, config, seed: 7);
        using var offline = new FederatedRewardModel(offlinePolicy, offlinePolicy.Encoder, config, seed: 7);
        var names = server.Model.Trainable().Select(p => p.Name).ToList();
        Assert.Equal(names, client.Model.Trainable().Select(p => p.Name));
        Assert.Equal("head.score.weight", names[^1]);
        if (lora) Assert.All(names.SkipLast(1), n => Assert.Contains("lora_", n));             // adapters and the head travel, not the trunk

        var spec = new FederatedSpec { Rounds = 1, ClientsPerRound = 1, MinClients = 1, LocalSteps = 3, RoundDeadline = TimeSpan.FromMinutes(1) };
        using var fed = new FederatedServer(spec, server.Model.Trainable());
        var initial = Flat(server.Model);
        var participant = new RewardModelParticipant("c", client.Model, pairs, new RewardModelOptions(), Inner, steps: 3, batchSize: 4);
        var update = new FederatedClient("c", participant, client.Model.Trainable(), pairs.Count).Train(new FederatedRoundRequest(0, 0, 0, fed.Global(), 0));
        fed.Apply(new AggregateRound(0, 0, [new ClientUpdate("c", 0, 0, update.Delta, null, update.Samples, update.Metrics, 0)], []));

        using (var t = new RewardModelTrainer(offline.Model, new RewardModelOptions(), Inner))
            for (int s = 0; s < 3; s++) t.Step(pairs.Skip(4 * s).Take(4).ToList());
        var (a, b) = (Flat(server.Model), Flat(offline.Model));
        double worst = a.Zip(b).Max(x => Math.Abs(x.Item1 - x.Item2));
        Assert.True(worst < 1e-6, $"the federated reward model is {worst} from the offline one");
        Assert.True(a.Zip(initial).Max(x => Math.Abs(x.Item1 - x.Item2)) > 1e-4, "the round moved no weight");
        Assert.True(update.Metrics["inner/loss_last"] < update.Metrics["inner/loss_first"] + 0.5);
    }

    [Fact]
    public void A_lora_reward_model_merges_into_a_plain_trunk_that_scores_the_same()
    {
        using var scope = NewDisposeScope();
        var policy = TinyTask.Load();
        var pairs = Pairs(policy, 8);
        using var rm = new FederatedRewardModel(policy, policy.Encoder, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["c_attn"] }, seed: 7);
        using (var t = new RewardModelTrainer(rm.Model, new RewardModelOptions(), Inner with { LearningRate = 5e-2 }))
            for (int s = 0; s < 3; s++) t.Step(pairs);                                        // adapters far from zero
        var items = pairs.Select(p => p.Chosen).ToList();
        var adapted = rm.Model.ScoreExamples(items);
        var plain = rm.Finish();
        try
        {
            Assert.DoesNotContain(plain.Trunk.Model.state_dict().Keys, k => k.Contains("lora_"));
            var merged = plain.ScoreExamples(items);
            Assert.True(adapted.Zip(merged).Max(x => Math.Abs(x.Item1 - x.Item2)) < 1e-4, "the merged trunk scores differently");
            using var before = new FederatedRewardModel(policy, policy.Encoder, null, seed: 7);
            Assert.True(before.Model.ScoreExamples(items).Zip(merged).Max(x => Math.Abs(x.Item1 - x.Item2)) > 1e-3, "training moved no score");
        }
        finally { plain.Trunk.Model.Dispose(); }
    }
}
