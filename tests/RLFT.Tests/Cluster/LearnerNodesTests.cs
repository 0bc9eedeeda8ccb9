using System.Diagnostics;
using Rlft.Actors.Jobs;
using Rlft.Policy.Checkpoints;
using Rlft.Tests.Cli;
using TorchSharp;

namespace Rlft.Tests.Cluster;

/// <summary>
/// A learner group across processes: `rlft node --roles learner` (the leader, with rollout and reward) and
/// `rlft node --roles learner-replica` as separate processes of the built executable, training data-parallel over the
/// TCP bulk channel. The group ends where one learner does; a replica that read another job is refused; a replica
/// killed with SIGKILL mid-PPO fails the job at once with a message that names the lost member (no hang).
/// </summary>
[Collection(ProcessTests.Name)]
public class LearnerNodesTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;
    const string Optimizer = "optimizer { lr = 2e-3, max-grad-norm = 0.5, eps = 1e-6, warmup-steps = 0, schedule = constant }";
    const string Stages = "{ kind = sft, data = \"builtin:sft\", steps = 4, batch-size = 6\n " + Optimizer + "\n}\n"
        + "{ kind = ppo, data = \"builtin:prompts\", eval-data = \"builtin:eval-prompts\", steps = STEPS, batch-size = 6\n sampling { max-new-tokens = 8 }\n ppo { epochs = 2, mini-batches = 1 }\n"
        + " rewards { components = [ { name = task, source = function, function = review-task }\n { name = length, source = length, unit = characters, target = 12, weight = 0.5 } ] }\n " + Optimizer + "\n}";

    static string Job(int ppoSteps, int learners, string extra = "") =>
        JobHarness.JobFile(Stages.Replace("STEPS", ppoSteps.ToString()), $"learners = {learners}\n max-policy-lag = 0\n {extra}");

    sealed record Group(RlftProcess Leader, RlftProcess Replica, string RunDirectory) : IDisposable
    {
        public void Dispose() { Leader.Dispose(); Replica.Dispose(); }
    }

    static async Task<Group> StartGroup(string leaderJob, string? replicaJob = null)
    {
        var (port, seed) = JobHarness.NewSeed();
        var leader = await RlftProcess.StartAsync(["node", "--config", leaderJob, "--roles", "learner,rollout,reward", "--port", port.ToString()], "up with roles", Ct);
        var replica = await RlftProcess.StartAsync(["node", "--config", replicaJob ?? leaderJob, "--roles", "learner-replica", "--port", JobHarness.FreePort().ToString(), "--seed-nodes", seed], "up with roles", Ct);
        return new Group(leader, replica, JobSpec.Load(leaderJob).RunDirectory);
    }

    async Task<int> Exit(RlftProcess p, string who, int minutes = 4)
    {
        await p.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(minutes), Ct);
        output.WriteLine($"--- {who} (exit {p.Process.ExitCode})\n{p.Log}");
        return p.Process.ExitCode;
    }

    static Dictionary<string, TorchSharp.torch.Tensor> FinalPolicy(string runDir) =>
        SafetensorsFile.Load(Path.Combine(ResumeHarness.FinalCheckpoint(runDir), "policy", "model.safetensors"));

    [Fact]
    public async Task A_learner_node_and_a_replica_process_train_as_one_learner_does()
    {
        string solo = Job(3, 1, "checkpoint-every = 100");
        using (var p = await RlftProcess.StartAsync(["run", solo], "rlft: job", Ct))
            Assert.Equal(0, await Exit(p, "rlft run, one learner"));

        using var group = await StartGroup(Job(3, 2, "checkpoint-every = 100"));
        Assert.Equal(0, await Exit(group.Leader, "learner node"));
        Assert.Equal(0, await Exit(group.Replica, "learner-replica node", minutes: 1));
        Assert.Contains("the job ended", group.Replica.Log);
        Assert.Contains("\"learners/size\":2", File.ReadLines(Path.Combine(group.RunDirectory, "metrics.jsonl")).Last(l => l.Contains("\"objective/", StringComparison.Ordinal)));

        var expected = FinalPolicy(JobSpec.Load(solo).RunDirectory);
        var actual = FinalPolicy(group.RunDirectory);
        double total = 0, norm = 0;
        foreach (var (name, w) in expected)
        {
            total += Math.Pow((actual[name] - w).norm().item<float>(), 2);
            norm += Math.Pow(w.norm().item<float>(), 2);
        }
        output.WriteLine($"‖w_group − w_one‖/‖w_one‖ = {Math.Sqrt(total / norm):g3}");
        Assert.True(Math.Sqrt(total) <= 1e-5 * Math.Sqrt(norm), $"the group of two processes ended {Math.Sqrt(total / norm):g3} (relative) from one learner");
    }

    [Fact]
    public async Task A_replica_killed_mid_ppo_fails_the_job_at_once_naming_the_lost_member()
    {
        using var group = await StartGroup(Job(400, 2));
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!File.Exists(Path.Combine(group.RunDirectory, "metrics.jsonl"))
               || !File.ReadLines(Path.Combine(group.RunDirectory, "metrics.jsonl")).Any(l => l.Contains("\"objective/", StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline && !group.Leader.Process.HasExited, $"no PPO step within 3 minutes:\n{group.Leader.Log}\n{group.Replica.Log}");
            await Task.Delay(20, Ct);
        }
        var killed = Stopwatch.StartNew();
        group.Replica.Kill();
        Assert.Equal(1, await Exit(group.Leader, "learner node", minutes: 2));
        output.WriteLine($"from the kill to the leader's exit: {killed.Elapsed.TotalSeconds:0.0} s");
        Assert.Contains("the link to member 1 was lost", group.Leader.Log);
        Assert.Contains("FAILED", group.Leader.Log);
    }

    [Fact]
    public async Task A_replica_that_read_another_job_is_refused_and_a_replica_of_a_one_learner_job_does_not_start()
    {
        string job = Job(3, 2);
        string other = Job(3, 2, "seed = 4");
        using var group = await StartGroup(job, other);
        Assert.Equal(1, await Exit(group.Leader, "learner node", minutes: 2));
        Assert.Contains("read another job than the leader", group.Leader.Log);

        var (o, e) = (new StringWriter(), new StringWriter());
        int code = Rlft.Host.Commands.Cli.Run(["node", "--config", Job(3, 1), "--roles", "learner-replica", "--port", JobHarness.FreePort().ToString(), "--seed-nodes", "akka.tcp://rlft@127.0.0.1:1"], o, e);
        Assert.NotEqual(0, code);
        Assert.Contains("--roles learner-replica: the job trains with one learner", e.ToString());
    }
}
