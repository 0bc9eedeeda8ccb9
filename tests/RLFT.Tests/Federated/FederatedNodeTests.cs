using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Serialization;
using Rlft.Actors.Compute;
using Rlft.Actors.Compute.Federated;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;
using Rlft.Actors.Serialization;
using Rlft.Policy.Tokenization;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Federated;

/// <summary>The cluster's serializer, keeping a copy of every message it writes: what crosses the wire between nodes.</summary>
public sealed class CapturingSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public static readonly ConcurrentQueue<(string Type, byte[] Bytes)> Written = new();
    readonly RlftSerializer _inner = new(system);

    public override int Identifier => RlftSerializer.Id;
    public override string Manifest(object o) => _inner.Manifest(o);
    public override object FromBinary(byte[] bytes, string manifest) => _inner.FromBinary(bytes, manifest);

    public override byte[] ToBinary(object obj)
    {
        var bytes = _inner.ToBinary(obj);
        Written.Enqueue((obj.GetType().Name, bytes));
        return bytes;
    }
}

/// <summary>
/// Federated stages on real nodes in one process (a learner and client nodes over loopback TCP): the clients' data —
/// canary strings, and their token ids — never appears in any message that crosses the cluster, and a client whose
/// model differs from the server's is refused and stops.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class FederatedNodeTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    const string Capturing = """
        akka.actor.serializers.rlft = "Rlft.Tests.Federated.CapturingSerializer, Rlft.Tests"
        akka.actor.serialization-identifiers { "Rlft.Tests.Federated.CapturingSerializer, Rlft.Tests" = 1701 }
        """;

    static string Stage(int rounds, int clients, bool secure = false) => $$"""
        { kind = sft, eval-data = "builtin:sft", batch-size = 8
          optimizer { lr = 2e-3 }
          federated { rounds = {{rounds}}, clients = {{clients}}, clients-per-round = {{clients}}, min-clients = {{clients}}, local-steps = 2, round-deadline = 60s,
                      secure-aggregation = {{(secure ? "on" : "off")}} }
        }
        """;

    /// <summary>The server: a learner node that forms the cluster at <paramref name="seed"/>, logging to the test's output.</summary>
    RlftNode Learner(JobSpec job, int port, string seed, string hocon) => RlftNode.Create(new NodeOptions
    {
        Job = job, Roles = ["learner"], Port = port, SeedNodes = [seed], ExtraHocon = hocon,
        MinimumLogLevel = Microsoft.Extensions.Logging.LogLevel.Information, LoggerProvider = new TestOutputLogger(output),
    }, new TorchEngineFactory());

    static RlftNode Client(JobSpec job, string seed, string data, string hocon) => RlftNode.Create(new NodeOptions
    {
        Job = job, Roles = ["client"], SeedNodes = [seed], ExtraHocon = hocon, ClientData = ClientData.Check(data, job),
        ClientWorkDirectory = Directory.CreateTempSubdirectory("rlft-client").FullName,
    }, new TorchEngineFactory());

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task No_canary_of_a_clients_data_crosses_the_cluster_and_the_stage_completes(bool secure)
    {
        var job = JobHarness.Job(Stage(rounds: 2, clients: 2, secure));
        var (port, seed) = JobHarness.NewSeed();
        string dataDir = Directory.CreateTempSubdirectory("rlft-fed-data").FullName;
        var canaries = new List<string>();
        var shards = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            string canary = $" zqx canary {i} vvk secret";
            canaries.Add(canary);
            var records = ReviewTask.SftCorpus(60, seed: 10 + i).Select(e => (object)e).Append(new SftExample("review the movie:", canary)).ToList();
            string path = Path.Combine(dataDir, $"client-{i}.jsonl");
            Jsonl.Write(path, records);
            shards.Add(path);
        }
        CapturingSerializer.Written.Clear();
        string hocon = JobHarness.NodeLossHocon + "\n" + Capturing;
        await using var learner = Learner(job, port, seed, hocon);
        await learner.StartAsync(Ct);
        await using var c0 = Client(job, seed, shards[0], hocon);
        await using var c1 = Client(job, seed, shards[1], hocon);
        await Task.WhenAll(c0.StartAsync(Ct), c1.StartAsync(Ct));
        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(4), Ct);
        Assert.True(finished.Succeeded, finished.Message);

        // The canaries as bytes: their text, and the token ids a client trains on (int32, as arrays travel).
        string modelDir = Path.Combine(job.RunDirectory, "init-model");
        var encoder = ModelFiles.Encoder(modelDir, HfTokenizer.Load(modelDir));
        var patterns = canaries.SelectMany(c => new[]
        {
            (c + " (text)", Encoding.UTF8.GetBytes(c.Trim())),
            (c + " (token ids)", MemoryMarshal.AsBytes(encoder.PromptCompletion("review the movie:", c).Completion.AsSpan()).ToArray()),
        }).ToList();
        var written = CapturingSerializer.Written.ToList();
        Assert.Contains(written, w => w.Type == "FederatedRoundUpdate");
        Assert.Contains(written, w => w.Type == "FederatedRoundRequest");
        Assert.Contains(written, w => w.Type == "JoinFederation");
        if (secure)
        {
            // Under secure aggregation no update crosses with its values: each is masked fixed-point words only.
            var serializer = new RlftSerializer((ExtendedActorSystem)learner.System);
            var updates = written.Where(w => w.Type == "FederatedRoundUpdate")
                .Select(w => (Rlft.Actors.Protocol.FederatedRoundUpdate)serializer.FromBinary(w.Bytes, w.Type)).ToList();
            // (The capture also sees the coordinator measuring a message's size, so count distinct updates.)
            Assert.Equal(4, updates.Select(u => (u.ClientId, u.Round)).Distinct().Count());   // 2 rounds × 2 clients
            Assert.All(updates, u => Assert.True(u.Delta.Length == 0 && u.Masked.Length > 0, $"{u.ClientId}'s update of round {u.Round} is not masked"));
            Assert.Contains(written, w => w.Type == "FederatedRoundKey");
            Assert.Contains(written, w => w.Type == "FederatedRoundPeers");
        }
        foreach (var (type, bytes) in written)
            foreach (var (what, pattern) in patterns)
                Assert.True(bytes.AsSpan().IndexOf(pattern) < 0, $"a {type} carried the canary{what}");
        output.WriteLine($"{written.Count} messages crossed the cluster, {written.Sum(w => (long)w.Bytes.Length)} bytes; none carried a canary");
        // And the check can fail: a message that did carry a client's record would have been caught.
        var leak = new RlftSerializer((ExtendedActorSystem)learner.System).ToBinary(new Rlft.Actors.Protocol.NoMoreWork(canaries[0]));
        Assert.Contains(patterns, p => leak.AsSpan().IndexOf(p.Item2) >= 0);

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(job.RunDirectory, "summary.json")));
        var root = summary.RootElement;
        Assert.Equal(2, root.GetProperty("0-sft/federated/rounds").GetDouble());
        Assert.Equal(0, root.GetProperty("0-sft/federated/malformed").GetDouble());
        Assert.True(root.GetProperty("0-sft/after/eval/loss").GetDouble() < root.GetProperty("0-sft/before/eval/loss").GetDouble());
    }

    [Fact]
    public async Task A_federated_reward_model_stage_trains_on_the_clients_pairs_and_becomes_the_jobs_reward_model()
    {
        var job = JobHarness.Job("""
            { kind = reward-model, eval-data = "builtin:preferences", batch-size = 8
              optimizer { lr = 2e-3 }
              federated { rounds = 3, clients = 2, clients-per-round = 2, min-clients = 2, local-steps = 3, round-deadline = 60s, secure-aggregation = on }
            }
            """);
        var (port, seed) = JobHarness.NewSeed();
        string dataDir = Directory.CreateTempSubdirectory("rlft-fed-rm").FullName;
        var shards = Enumerable.Range(0, 2).Select(i =>
        {
            string dir = Directory.CreateDirectory(Path.Combine(dataDir, $"client-{i}")).FullName;
            Jsonl.Write(Path.Combine(dir, ClientData.PreferencesFile), ReviewTask.Preferences(48, seed: 20 + i));
            return dir;
        }).ToList();
        await using var learner = Learner(job, port, seed, JobHarness.NodeLossHocon);
        await learner.StartAsync(Ct);
        await using var c0 = Client(job, seed, shards[0], JobHarness.NodeLossHocon);
        await using var c1 = Client(job, seed, shards[1], JobHarness.NodeLossHocon);
        await Task.WhenAll(c0.StartAsync(Ct), c1.StartAsync(Ct));
        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(4), Ct);
        Assert.True(finished.Succeeded, finished.Message);

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(job.RunDirectory, "summary.json")));
        var root = summary.RootElement;
        output.WriteLine(root.ToString());
        double F(string key) => root.GetProperty(key).GetDouble();
        Assert.Equal(3, F("0-reward-model/federated/rounds"));
        Assert.True(F("0-reward-model/after/eval/accuracy") > F("0-reward-model/before/eval/accuracy"), "the federated reward model ranks more held-out pairs right");
        // It is the job's reward model now: version 1, saved with the run's checkpoint beside the (unchanged) policy.
        var checkpoint = Directory.GetDirectories(Path.Combine(job.RunDirectory, "checkpoints")).Single();
        Assert.True(File.Exists(Path.Combine(checkpoint, CheckpointLayout.RewardModel, CheckpointLayout.RewardHead)), "no reward head in the checkpoint");
        using var resume = JsonDocument.Parse(File.ReadAllText(Path.Combine(checkpoint, "resume.json")));
        Assert.Equal(1, resume.RootElement.GetProperty("reward_model_version").GetInt64());
        Assert.Equal(0, F("job/policy_version"));
    }

    [Fact]
    public async Task A_client_that_cannot_train_says_why_and_the_stage_fails_with_its_reason_before_any_deadline()
    {
        var job = JobHarness.Job("""
            { kind = sft, eval-data = "builtin:sft", batch-size = 8
              federated { rounds = 2, clients = 2, clients-per-round = 2, min-clients = 2, local-steps = 2, round-deadline = 10m, round-retries = 1 }
            }
            """);
        var (port, seed) = JobHarness.NewSeed();
        string dir = Directory.CreateTempSubdirectory("rlft-fed-bad").FullName;
        string good = Path.Combine(dir, "good.jsonl"), bad = Path.Combine(dir, "bad.jsonl");
        Jsonl.Write(good, ReviewTask.SftCorpus(20, seed: 1));
        // Well-formed, so the node starts; but a conversation needs a chat template, which the job's model has none of.
        File.WriteAllText(bad, """{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi."}]}""" + "\n");
        await using var learner = Learner(job, port, seed, JobHarness.NodeLossHocon);
        await learner.StartAsync(Ct);
        await using var c0 = Client(job, seed, good, JobHarness.NodeLossHocon);
        await using var c1 = Client(job, seed, bad, JobHarness.NodeLossHocon);
        await Task.WhenAll(c0.StartAsync(Ct), c1.StartAsync(Ct));
        var started = DateTime.UtcNow;
        var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(3), Ct);
        Assert.False(finished.Succeeded);
        Assert.Contains("failed 2 times", finished.Message);
        Assert.Contains("failed: ", finished.Message);                              // the client said so, not a timeout
        Assert.Contains("the message is in the client's log", finished.Message);
        Assert.DoesNotContain("bad.jsonl", finished.Message);                       // nothing of the client's data, not even its file
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromMinutes(2), "the stage waited for a deadline");
        output.WriteLine(finished.Message);
    }

    [Fact]
    public async Task A_client_with_another_model_is_refused_and_stops()
    {
        var job = JobHarness.Job(Stage(rounds: 1, clients: 1));
        var other = JobHarness.Job(Stage(rounds: 1, clients: 1), extra: "model { arch = llama, preset = tiny }");
        var (port, seed) = JobHarness.NewSeed();
        string data = Path.Combine(Directory.CreateTempSubdirectory("rlft-fed-data").FullName, "mine.jsonl");
        Jsonl.Write(data, ReviewTask.SftCorpus(20, seed: 1));
        await using var learner = Learner(job, port, seed, JobHarness.NodeLossHocon);
        await learner.StartAsync(Ct);
        await using var client = Client(other, seed, data, JobHarness.NodeLossHocon);
        await client.StartAsync(Ct);
        string reason = await client.JobEnded.WaitAsync(TimeSpan.FromMinutes(2), Ct);
        Assert.StartsWith(FederatedClientActor.StopPrefix, reason);
        Assert.Contains("differs from the server's", reason);
        Assert.False(learner.Finished.IsCompleted, "the job waits for a client with the right model");
    }
}
