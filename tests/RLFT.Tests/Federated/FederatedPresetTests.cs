using System.Text.Json;
using Rlft.Actors.Configuration;
using Rlft.Rollout.Tasks;
using Rlft.Tests.Cli;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Federated;

/// <summary>
/// hocon/federated.conf as scripts/federated-demo.sh runs it, every node a process: the server (`rlft node --roles
/// learner`) and 4 clients (`rlft node --roles client --data SHARD`) on non-IID shards. Federated SFT must cut the
/// held-out loss, the federated reward model must rank more held-out pairs right, federated DPO must not lose held-out
/// preference accuracy, and only LoRA adapters (and the reward head) travel.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class FederatedPresetTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_federated_preset_runs_with_a_server_and_four_client_processes()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-fed-preset").FullName;
        string data = Path.Combine(dir, "federated-data");
        var shards = FederatedShards.Write(data, clients: 4, seed: 1);
        // The preset as shipped, its run and held-out paths moved into this test's folder.
        string job = Path.Combine(dir, "federated.conf");
        File.WriteAllText(job, File.ReadAllText(Path.Combine(RlftConfig.HoconDirectory, "federated.conf"))
            .Replace("\"runs/federated-data/", $"\"{data}/").Replace("output-dir = runs", $"output-dir = \"{dir}/runs\""));
        var (port, seed) = JobHarness.NewSeed();
        using var server = await RlftProcess.StartAsync(["node", "--config", job, "--roles", "learner", "--port", port.ToString()], "up with roles", Ct);
        var clients = new List<RlftProcess>();
        try
        {
            foreach (var shard in shards)
                clients.Add(await RlftProcess.StartAsync(["node", "--config", job, "--roles", "client", "--data", shard, "--port", JobHarness.FreePort().ToString(), "--seed-nodes", seed], "up with roles", Ct));
            // The server ends the job; a client that stops on its own first (refused, or failed to load its model) would
            // leave it waiting for start-clients, so that is a failure now, with every node's output.
            var deadline = Task.Delay(TimeSpan.FromMinutes(12), Ct);
            var exits = clients.Select(c => c.Process.WaitForExitAsync(Ct)).ToList();
            while (!server.Process.HasExited)
            {
                var first = await Task.WhenAny([server.Process.WaitForExitAsync(Ct), deadline, .. exits]);
                if (first == deadline) Assert.Fail($"the server did not exit in 12 minutes.\n{Logs(server, clients)}");
                if (clients.FirstOrDefault(c => c.Process.HasExited && c.Process.ExitCode != 0) is { } failed && !server.Process.HasExited)
                    Assert.Fail($"client {clients.IndexOf(failed)} exited with {failed.Process.ExitCode} before the server.\n{Logs(server, clients)}");
                exits = exits.Where(e => !e.IsCompleted).ToList();
            }
            await server.Process.WaitForExitAsync(Ct);
            output.WriteLine(server.Log[^Math.Min(3000, server.Log.Length)..]);
            Assert.Equal(0, server.Process.ExitCode);

            string run = Path.Combine(dir, "runs", "federated");
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
            var s = summary.RootElement;
            double F(string key) => s.GetProperty(key).GetDouble();
            output.WriteLine(s.ToString());
            Assert.True(F("0-sft/after/eval/loss") < F("0-sft/before/eval/loss") - 1.0, "federated SFT cut the held-out loss by at least 1 nat");
            Assert.True(F("1-reward-model/after/eval/accuracy") > F("1-reward-model/before/eval/accuracy"), "the federated reward model ranks more held-out pairs right");
            Assert.True(F("2-dpo/after/eval/accuracy") >= F("2-dpo/before/eval/accuracy"), "federated DPO kept or raised the held-out preference accuracy");
            Assert.Equal(8, F("0-sft/federated/rounds"));
            Assert.Equal(4, F("1-reward-model/federated/rounds"));
            Assert.Equal(4, F("2-dpo/federated/rounds"));
            // Only the adapters travel: each message holds well under 1 MB (the small model's weights are ~17 MB).
            var rounds = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.TryGetProperty("federated/sampled", out _)).ToList();
            Assert.Equal(16, rounds.Count);
            Assert.All(rounds, r => Assert.True(r.GetProperty("federated/bytes_sent").GetDouble() / r.GetProperty("federated/sampled").GetDouble() < 1_000_000));
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    /// <summary>The end of what every node printed.</summary>
    static string Logs(RlftProcess server, List<RlftProcess> clients) => $"server:\n{Tail(server.Log)}\n"
        + string.Join("\n", clients.Select((c, i) => $"client {i}{(c.Process.HasExited ? $" (exited {c.Process.ExitCode})" : "")}:\n{Tail(c.Log)}"));

    static string Tail(string log) => log[^Math.Min(6000, log.Length)..];
}
