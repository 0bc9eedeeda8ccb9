using System.Collections.Concurrent;
using System.Text.Json;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;
using Rlft.Tests.Cli;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Federated;

/// <summary>
/// A federated SFT stage with its clients as separate `rlft node --roles client --data …` processes, each on its own
/// non-IID shard, the learner (the server) in the test process. One client is SIGKILLed while it trains in a round:
/// the round completes with the others (min-clients), the job completes, every round's figures (participants,
/// samples, bytes) are in metrics.jsonl, no client is counted twice, and the global model's held-out loss fell. Under
/// secure aggregation the same holds: the round the client died in is masked against its key and restarts without it.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class FederatedProcessTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;
    const int RoundCount = 6;
    // Distinct shard sizes: a round's sample count says which clients took part.
    static readonly int[] ShardSizes = [40, 50, 60];

    /// <summary>A metrics line, or null for one still being written.</summary>
    static JsonElement? Parse(string line)
    {
        try { return JsonDocument.Parse(line).RootElement; }
        catch (JsonException) { return null; }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Client_processes_train_a_federated_stage_and_a_killed_client_is_not_waited_for_nor_counted_twice(bool secure)
    {
        string dir = Directory.CreateTempSubdirectory("rlft-fed").FullName;
        var shards = new List<string>();
        var corpus = ReviewTask.SftCorpus(2000, seed: 5);
        for (int i = 0; i < 3; i++)
        {
            string path = Path.Combine(dir, $"client-{i}.jsonl");
            Jsonl.Write(path, corpus.Where(e => FederatedShards.ShardOf(e.Prompt, 3) == i).Take(ShardSizes[i]));
            shards.Add(path);
        }
        string jobFile = Path.Combine(dir, "job.conf");
        File.WriteAllText(jobFile, JobHarness.JobText(
            $$"""
            { kind = sft, eval-data = "builtin:sft", batch-size = 8
              optimizer { lr = 2e-3 }
              federated { rounds = {{RoundCount}}, clients = 3, clients-per-round = 3, min-clients = 2, start-clients = 3, local-steps = 40, round-deadline = 90s, round-retries = 2,
                          secure-aggregation = {{(secure ? "on" : "off")}} }
            }
            """,
            around: """
                akka.cluster {
                  failure-detector.acceptable-heartbeat-pause = 3s
                  split-brain-resolver { stable-after = 2s, down-all-when-unstable = off }
                }
                """));
        var job = JobSpec.Load(jobFile);
        var (port, seed) = JobHarness.NewSeed();
        await using var learner = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner"], Port = port, SeedNodes = [seed],
            MinimumLogLevel = Microsoft.Extensions.Logging.LogLevel.Information, LoggerProvider = new TestOutputLogger(output),
        }, new TorchEngineFactory());
        await learner.StartAsync(Ct);
        var clients = await Task.WhenAll(shards.Select(shard => RlftProcess.StartAsync(
            ["node", "--config", jobFile, "--roles", "client", "--data", shard, "--port", JobHarness.FreePort().ToString(), "--seed-nodes", seed], "up with roles", Ct)));
        try
        {
            // A round with all three aggregated (clients join in any order; rounds start once min-clients are Up): the
            // next round's weights are on their way to all three, and client 1 dies while it trains on them.
            string metrics = Path.Combine(job.RunDirectory, "metrics.jsonl");
            List<JsonElement> Rounds() => !File.Exists(metrics) ? [] : File.ReadAllLines(metrics)
                .Select(Parse).OfType<JsonElement>().Where(e => e.TryGetProperty("federated/participants", out _)).ToList();
            var deadline = DateTime.UtcNow.AddMinutes(4);
            int fullRound = -1;
            while (fullRound < 0 && DateTime.UtcNow < deadline && !learner.Finished.IsCompleted)
            {
                await Task.Delay(20, Ct);
                fullRound = Rounds().FindIndex(r => r.GetProperty("federated/participants").GetDouble() == 3);
            }
            Assert.True(fullRound >= 0 && fullRound < RoundCount - 1, $"no round with all three clients before the last (found {fullRound})");
            clients[1].Kill();
            output.WriteLine($"killed client 1 after round {fullRound + 1}");

            var finished = await learner.Finished.WaitAsync(TimeSpan.FromMinutes(5), Ct);
            Assert.True(finished.Succeeded, finished.Message + "\n" + string.Join("\n", clients.Select(c => c.Log)));

            var lines = Rounds();
            Assert.Equal(RoundCount, lines.Count);
            // Nothing counted twice: each round's samples are exactly those of distinct clients that took part.
            var sums = new Dictionary<int, int[]> { [2] = [ShardSizes[0] + ShardSizes[1], ShardSizes[0] + ShardSizes[2], ShardSizes[1] + ShardSizes[2]], [3] = [ShardSizes.Sum()] };
            int withoutKilled = ShardSizes[0] + ShardSizes[2];
            foreach (var (line, r) in lines.Select((l, r) => (l, r)))
            {
                double participants = line.GetProperty("federated/participants").GetDouble(), samples = line.GetProperty("federated/samples").GetDouble();
                output.WriteLine($"round {r + 1}: {line.GetProperty("federated/sampled").GetDouble()} sampled, {participants} participants, {samples} samples, " +
                    $"{line.GetProperty("federated/bytes_sent").GetDouble()} bytes sent, {line.GetProperty("federated/bytes_received").GetDouble()} received");
                Assert.True(participants is 2 or 3, $"round {r + 1}: {participants} participants");
                Assert.Contains((int)samples, sums[(int)participants]);
                Assert.True(line.GetProperty("federated/bytes_sent").GetDouble() > 0);
                Assert.True(line.GetProperty("federated/bytes_received").GetDouble() > 0);
                // After the round it died in (which it may have answered before the kill), the killed client is in no aggregate.
                if (r > fullRound + 1) Assert.Equal(withoutKilled, samples);
            }
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(job.RunDirectory, "summary.json")));
            var root = summary.RootElement;
            double before = root.GetProperty("0-sft/before/eval/loss").GetDouble(), after = root.GetProperty("0-sft/after/eval/loss").GetDouble();
            output.WriteLine($"held-out loss {before:F3} -> {after:F3}; summary bytes sent {root.GetProperty("0-sft/federated/bytes_sent").GetDouble()}, " +
                $"retries {root.GetProperty("0-sft/federated/retries").GetDouble()}");
            // Under secure aggregation a round the killed client had the keys of but did not answer restarts without it.
            Assert.Equal(0, root.GetProperty("0-sft/federated/malformed").GetDouble());
            Assert.True(after < before - 0.3, $"held-out loss {before:F3} -> {after:F3}");

            // The surviving clients hear that the job ended and leave.
            foreach (var c in new[] { clients[0], clients[2] })
                await c.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }
}
