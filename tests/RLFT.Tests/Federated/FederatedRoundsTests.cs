using System.Runtime.InteropServices;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using Rlft.Actors.Compute.Federated;
using Rlft.Actors.Configuration;
using Rlft.Actors.Coordination;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Regularization;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using Rlft.Tests.Training;
using static TorchSharp.torch;

namespace Rlft.Tests.Federated;

/// <summary>
/// Federated SFT rounds end to end in one process — the driver, the server and three clients on non-IID shards — with
/// every message between them passed through the cluster's serializer, as it would cross the wire: the clients' data
/// never appears in a message, a client that crashes mid-round is not waited for and takes part again after it
/// rejoins, nothing is counted twice, and the held-out loss improves.
/// </summary>
public sealed class FederatedRoundsTests : IDisposable
{
    readonly ActorSystem _system = ActorSystem.Create("fed",
        ConfigurationFactory.ParseString("akka.actor.provider = local").WithFallback(RlftConfig.BaseAkka().Config));

    public void Dispose() => _system.Terminate().Wait(TimeSpan.FromSeconds(10));

    readonly List<(string Text, byte[] Bytes)> _canaries = new();
    long _bytes;

    /// <summary>The message as the other side gets it: serialized, checked for every canary, deserialized.</summary>
    T Cross<T>(T message) where T : IRlftMessage
    {
        var serializer = _system.Serialization.FindSerializerFor(message);
        var bytes = serializer.ToBinary(message);
        _bytes += bytes.Length;
        foreach (var (text, canary) in _canaries)
            Assert.True(bytes.AsSpan().IndexOf(canary) < 0, $"{typeof(T).Name} carries the canary {text}");
        return (T)_system.Serialization.Deserialize(bytes, serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, message));
    }

    [Fact]
    public void Federated_sft_keeps_data_local_survives_a_crash_counts_nothing_twice_and_improves_held_out_loss()
    {
        using var scope = NewDisposeScope();
        var spec = new FederatedSpec { Rounds = 4, ClientsPerRound = 3, MinClients = 2, LocalSteps = 3, RoundDeadline = TimeSpan.FromSeconds(60) };
        var server = TinyTask.Load();
        var encoder = server.Encoder;
        var corpus = ReviewTask.SftCorpus(300, seed: 5);

        // Non-IID shards: client i reviews a third of the items (client 0 also holds the sums), plus a planted canary.
        var clients = new Dictionary<string, FederatedClient>();
        var options = new Rlft.Policy.Training.OptimizerOptions { LearningRate = 2e-3, TotalSteps = spec.LocalSteps, WarmupSteps = 0 };
        for (int i = 0; i < 3; i++)
        {
            string id = $"client-{i}", canary = $" zqx canary {i} vvk secret";
            var shard = corpus.Where(e => ShardOf(e.Prompt) == i).Select(e => (e.Prompt, e.Completion)).ToList();
            shard.Add(("review the movie:", canary));
            var canaryIds = encoder.PromptCompletion("review the movie:", canary).Completion;
            _canaries.Add((canary, Encoding.UTF8.GetBytes(canary.Trim())));
            _canaries.Add((canary + " (token ids)", MemoryMarshal.AsBytes(canaryIds.AsSpan()).ToArray()));
            var policy = TinyTask.Load();
            var examples = shard.Select(x => policy.Encoder.PromptCompletion(x.Item1, x.Item2)).ToList();
            var participant = new SftParticipant(id, policy, examples, options, spec.LocalSteps, batchSize: 8);
            clients[id] = new FederatedClient(id, participant, TrainableParameters.Of(policy.Model), examples.Count);
        }

        var heldOut = ReviewTask.SftCorpus(96, seed: 77).Select(e => encoder.PromptCompletion(e.Prompt, e.Completion)).ToList();
        double before = SftTrainer.Loss(server, heldOut);
        using var fed = new FederatedServer(spec, TrainableParameters.Of(server.Model));
        var driver = new FederatedStageDriver(spec, seed: 3);
        var now = DateTime.UnixEpoch;
        foreach (var id in clients.Keys) driver.ClientUp(Cross(new JoinFederation(id)).ClientId, now);

        var rounds = new List<AggregateRound>();
        var crashedIn = -1;
        FederatedCommand? command = driver.Begin(now);
        while (command is not FinishStage)
        {
            switch (command)
            {
                case StartRound start:
                    command = null;
                    foreach (var id in start.Clients)
                    {
                        var request = Cross(new FederatedRoundRequest(0, start.Round, start.Attempt, fed.Global(), 0));
                        if (start.Round == 1 && id == "client-1")
                        {
                            crashedIn = start.Round;                           // SIGKILLed before it answers
                            continue;
                        }
                        var update = Cross(clients[id].Train(request));
                        var received = new ClientUpdate(update.ClientId, update.Round, update.Attempt, update.Delta, null, update.Samples, update.Metrics, update.Delta.Length * 4L);
                        command = driver.Update(received, now) ?? command;
                        Assert.Null(driver.Update(received, now));               // a resent update is not counted again
                    }
                    if (crashedIn == start.Round && command is null)
                    {
                        command = driver.ClientDown("client-1", now);           // the cluster sees it gone
                        Assert.Null(driver.ClientUp("client-1", now));          // and it restarts, while the round aggregates
                    }
                    break;
                case AggregateRound round:
                    rounds.Add(round);
                    fed.Apply(round);
                    command = driver.Aggregated(now);
                    break;
                default:
                    Assert.Fail($"unexpected {command}");
                    break;
            }
        }

        double after = SftTrainer.Loss(server, heldOut);
        Assert.Equal(4, rounds.Count);
        Assert.All(rounds, r => Assert.Equal(r.Updates.Count, r.Updates.Select(u => u.ClientId).Distinct().Count()));
        Assert.Equal(["client-0", "client-2"], rounds[1].Updates.Select(u => u.ClientId));
        Assert.Contains("client-1", rounds[2].Updates.Select(u => u.ClientId));   // back after rejoining
        Assert.Equal(rounds.Sum(r => r.Updates.Count), driver.Duplicates + driver.LateDiscarded); // every resend discarded (late once its round closed)
        Assert.Equal(rounds[1].Updates.Sum(u => u.Samples), rounds[1].Figures["federated/samples"]);
        Assert.True(after < before - 0.5, $"held-out loss {before:F3} → {after:F3}");
        Assert.True(_bytes > 0);
    }

    /// <summary>A participant whose update is always (3, 4): norm 5.</summary>
    sealed class FixedUpdate : IParticipant
    {
        public string Id => "fixed";
        public ParticipantUpdate Run(WeightSet global, int round)
        {
            using var target = new TorchSharp.Modules.Parameter(tensor(new float[] { 3, 4 }));
            using var after = WeightSet.Snapshot([("theta", target)]);
            using var zero = WeightSet.ZerosLike(after);
            return new ParticipantUpdate(Id, zero.DeltaTo(after), 1, new Dictionary<string, double>());
        }
    }

    [Fact]
    public void A_client_clips_its_update_when_the_server_asks()
    {
        using var theta = new TorchSharp.Modules.Parameter(tensor(new float[] { 0, 0 }));
        var client = new FederatedClient("c", new FixedUpdate(), [("theta", theta)], samples: 12);
        var clipped = client.Train(new FederatedRoundRequest(0, 0, 0, [0, 0], ClipNorm: 1));
        Assert.Equal([0.6f, 0.8f], clipped.Delta);
        Assert.Equal([3f, 4f], client.Train(new FederatedRoundRequest(0, 1, 0, [0, 0], ClipNorm: 0)).Delta);
        Assert.Equal(12, clipped.Samples);
    }

    /// <summary>A participant whose update is always the same vector (its own), with a loss figure.</summary>
    sealed class FixedDelta(string id, float[] delta) : IParticipant
    {
        public string Id => id;
        public ParticipantUpdate Run(WeightSet global, int round) =>
            new(id, WeightSet.FromFloats(global, delta), 1, new Dictionary<string, double> { ["inner/loss_last"] = delta[0] });
    }

    /// <summary>
    /// Two rounds of three clients with fixed updates and weights 2, 3 and 5 examples, every message through the
    /// serializer: plainly, or under secure aggregation (keys, the roster, masked updates). The server's final weights.
    /// </summary>
    float[] Rounds(bool secure, ClientPrivacy? privacy, List<FederatedRoundUpdate> sent)
    {
        string[] ids = ["client-a", "client-b", "client-c"];
        double[] samples = [2, 3, 5];
        var rng = new Random(11);
        var spec = new FederatedSpec
        {
            Rounds = 2, ClientsPerRound = 3, MinClients = 2, LocalSteps = 1, RoundDeadline = TimeSpan.FromSeconds(60),
            SecureAggregation = secure, Privacy = privacy, Clients = privacy is null ? 0 : 3,
        };
        var clients = ids.Select((id, i) => new FederatedClient(id,
            new FixedDelta(id, Enumerable.Range(0, 301).Select(_ => (float)((rng.NextDouble() - 0.5) * 4)).ToArray()),
            [("theta", new TorchSharp.Modules.Parameter(zeros(301)))], samples[i])).ToDictionary(c => c.Id);
        using var theta = new TorchSharp.Modules.Parameter(zeros(301));
        using var fed = new FederatedServer(spec, [("theta", theta)], noiseSeed: 5);
        var driver = new FederatedStageDriver(spec, seed: 3);
        var now = DateTime.UnixEpoch;
        foreach (var id in ids) driver.ClientUp(id, now);
        var pending = new Dictionary<string, (FederatedRoundUpdate Update, System.Security.Cryptography.ECDiffieHellman Key, double Weight)>();
        ClientUpdate Received(FederatedRoundUpdate u)
        {
            sent.Add(u);
            return new(u.ClientId, u.Round, u.Attempt, u.Delta, u.Masked.Length > 0 ? u.Masked : null, u.Samples, u.Metrics, 0);
        }
        FederatedCommand? command = driver.Begin(now);
        while (command is not FinishStage)
        {
            switch (command)
            {
                case StartRound start:
                    command = null;
                    foreach (var id in start.Clients)
                    {
                        var request = Cross(new FederatedRoundRequest(0, start.Round, start.Attempt, fed.Global(), privacy?.ClipNorm ?? 0, secure));
                        if (!request.Secure)
                        {
                            command = driver.Update(Received(Cross(clients[id].Train(request))), now) ?? command;
                            continue;
                        }
                        var key = SecureAggregation.NewKey();
                        var k = Cross(new FederatedRoundKey(id, 0, request.Round, request.Attempt, SecureAggregation.PublicKey(key), clients[id].WeightFor(request)));
                        pending[id] = (clients[id].Train(request), key, k.Weight);
                        command = driver.Key(k.ClientId, k.Round, k.Attempt, k.PublicKey, k.Weight, 0) ?? command;
                    }
                    break;
                case ExchangeKeys keys:
                    command = null;
                    var peers = Cross(new FederatedRoundPeers(0, keys.Round, keys.Attempt, new(keys.PublicKeys), keys.TotalWeight));
                    foreach (var id in keys.Clients)
                    {
                        var (plain, key, weight) = pending[id];
                        using (key) command = driver.Update(Received(Cross(FederatedClient.Mask(plain, key, weight, peers))), now) ?? command;
                    }
                    break;
                case AggregateRound round:
                    fed.Apply(round);
                    command = driver.Aggregated(now);
                    break;
                default:
                    Assert.Fail($"unexpected {command}");
                    break;
            }
        }
        return fed.Global();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Secure_aggregation_gives_the_plain_rounds_result_and_no_update_leaves_a_client_unmasked(bool privacy)
    {
        var dp = privacy ? new ClientPrivacy(clipNorm: 5, noiseMultiplier: 0.3, delta: 1e-5) : null;
        var plainSent = new List<FederatedRoundUpdate>();
        var secureSent = new List<FederatedRoundUpdate>();
        var plain = Rounds(secure: false, dp, plainSent);
        var secure = Rounds(secure: true, dp, secureSent);

        // The same weights, up to the fixed point's resolution (2^-24 per client and round) and fp32 rounding.
        double worst = plain.Zip(secure).Max(p => Math.Abs(p.Item1 - p.Item2));
        Assert.True(worst < 4e-6, $"secure and plain rounds differ by {worst}");
        Assert.True(plain.Max(Math.Abs) > 0.1, "the rounds moved the weights");
        // No update under secure aggregation carried its values: no plain delta, and the masked words show none of them.
        Assert.Equal(6, secureSent.Count);
        foreach (var (m, p) in secureSent.Zip(plainSent))
        {
            Assert.Empty(m.Delta);
            var alone = SecureAggregation.Decode(m.Masked);
            Assert.True(alone.Zip(p.Delta).Count(x => Math.Abs(x.Item1 - x.Item2) < 0.5) < p.Delta.Length / 2,
                $"{m.ClientId}'s masked update is close to its plain update");
        }
    }

    [Fact]
    public void A_client_masks_only_against_a_roster_that_carries_its_own_key_and_another()
    {
        using var theta = new TorchSharp.Modules.Parameter(zeros(2));
        var client = new FederatedClient("c", new FixedUpdate(), [("theta", theta)], samples: 4);
        var request = new FederatedRoundRequest(0, 0, 0, [0, 0], ClipNorm: 0, Secure: true);
        var update = client.Train(request);
        using var mine = SecureAggregation.NewKey();
        using var other = SecureAggregation.NewKey();
        byte[] Pub(System.Security.Cryptography.ECDiffieHellman k) => SecureAggregation.PublicKey(k);
        var swapped = new FederatedRoundPeers(0, 0, 0, new() { ["c"] = Pub(other), ["d"] = Pub(other) }, 8);
        Assert.Contains("own key", Assert.Throws<InvalidOperationException>(() => FederatedClient.Mask(update, mine, 4, swapped)).Message);
        var alone = new FederatedRoundPeers(0, 0, 0, new() { ["c"] = Pub(mine) }, 4);
        Assert.Contains("no other client", Assert.Throws<InvalidOperationException>(() => FederatedClient.Mask(update, mine, 4, alone)).Message);
        var ok = FederatedClient.Mask(update, mine, 4, new FederatedRoundPeers(0, 0, 0, new() { ["c"] = Pub(mine), ["d"] = Pub(other) }, 8));
        Assert.Equal(2, ok.Masked.Length);
        Assert.Throws<ArgumentException>(() => FederatedClient.Mask(update, mine, 4, new FederatedRoundPeers(0, 1, 0, new() { ["c"] = Pub(mine), ["d"] = Pub(other) }, 8)));
    }

    static int ShardOf(string prompt)
    {
        int item = Array.FindIndex(ReviewTask.Items, it => prompt.Contains(it, StringComparison.Ordinal));
        return item < 0 ? 0 : item % 3;
    }
}
