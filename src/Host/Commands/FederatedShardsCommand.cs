using System.CommandLine;
using Rlft.Rollout.Tasks;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft federated-shards --out DIR [--clients 4] [--seed 1]`: non-IID shards of the built-in task for a federated run
/// on one machine (<see cref="FederatedShards"/>): DIR/client-i/{sft,preferences}.jsonl — client i reviews only the
/// items whose index is i modulo the number of clients, client 0 also holds the sums — and the server's held-out sets
/// DIR/eval-sft.jsonl and DIR/eval-preferences.jsonl. Each client node gets its folder: --data DIR/client-i.
/// </summary>
internal static class FederatedShardsCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Directory to write the shards and held-out sets into", Required = true };
        var clients = new Option<int>("--clients") { Description = "Number of clients (1 to 12)", DefaultValueFactory = _ => 4 };
        var seed = new Option<int>("--seed") { Description = "Seed of the generated data", DefaultValueFactory = _ => 1 };
        var command = new Command("federated-shards", "Write non-IID client shards and held-out sets of the built-in task for a federated run.") { output, clients, seed };
        command.SetAction(r =>
        {
            int n = r.GetValue(clients);
            if (n < 1 || n > ReviewTask.Items.Length) throw new CliException($"--clients: between 1 and {ReviewTask.Items.Length}, got {n}");
            string dir = r.GetValue(output)!;
            var folders = FederatedShards.Write(dir, n, r.GetValue(seed));
            foreach (var f in folders) r.InvocationConfiguration.Output.WriteLine($"rlft: wrote {f}/sft.jsonl and {f}/preferences.jsonl");
            r.InvocationConfiguration.Output.WriteLine($"rlft: held-out sets in {Path.Combine(dir, "eval-sft.jsonl")} and {Path.Combine(dir, "eval-preferences.jsonl")}");
            return 0;
        });
        return command;
    }
}
