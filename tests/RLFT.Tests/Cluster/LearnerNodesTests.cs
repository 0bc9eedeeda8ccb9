using System.Diagnostics;
using Rlft.Actors.Jobs;
using Rlft.Policy.Checkpoints;
using Rlft.Tests.Cli;
using TorchSharp;

namespace Rlft.Tests.Cluster;

/// <summary>
/// A learner group across processes: `rlft node --roles learner` (the leader, with rollout and reward) and
/// `rlft node --roles learner-replica` as separate processes of the built executable, training data-parallel over the
/// TCP bulk channel. The group ends where one learner does; a replica that read another job is refused; the group goes
/// on without a replica killed with SIGKILL (an online step trained again, an offline stage from its start) and takes in
/// one that joins; the replicas' weights are compared every 5 steps.
/// </summary>
[Collection(ProcessTests.Name)]
public class LearnerNodesTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;
    const string Optimizer = "optimizer { lr = 2e-3, max-grad-norm = 0.5, eps = 1e-6, warmup-steps = 0, schedule = constant }";
    const string Stages = "{ kind = sft, data = \"builtin:sft\", steps = SFT, batch-size = 6\n " + Optimizer + "\n}\n"
        + "{ kind = ppo, data = \"builtin:prompts\", eval-data = \"builtin:eval-prompts\", steps = STEPS, batch-size = 6\n sampling { max-new-tokens = 8 }\n ppo { epochs = 2, mini-batches = 1 }\n"
        + " rewards { components = [ { name = task, source = function, function = review-task }\n { name = length, source = length, unit = characters, target = 12, weight = 0.5 } ] }\n " + Optimizer + "\n}";

    /// <param name="online">ppo, or grpo-lora: GRPO (groups of 2) training LoRA adapters.</param>
    static string Job(int ppoSteps, int learners, string extra = "", int sftSteps = 4, string online = "ppo")
    {
        string stages = Stages.Replace("STEPS", ppoSteps.ToString()).Replace("SFT", sftSteps.ToString());
        if (online == "grpo-lora")
        {
            stages = stages.Replace("kind = ppo", "kind = grpo").Replace("ppo { epochs = 2, mini-batches = 1 }", "grpo { group-size = 2, epochs = 2 }");
            extra += "\n lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj] }";
        }
        return JobHarness.JobFile(stages, $"learners = {learners}\n max-policy-lag = 0\n {extra}");
    }

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

    /// <summary>The final checkpoint's policy weights and, with LoRA, its adapters (as "adapter/NAME").</summary>
    static Dictionary<string, TorchSharp.torch.Tensor> FinalPolicy(string runDir)
    {
        string final = ResumeHarness.FinalCheckpoint(runDir);
        var weights = SafetensorsFile.Load(Path.Combine(final, "policy", "model.safetensors"));
        string adapters = Path.Combine(final, "policy-adapter", "adapter_model.safetensors");
        if (File.Exists(adapters))
            foreach (var (name, t) in SafetensorsFile.Load(adapters)) weights["adapter/" + name] = t;
        return weights;
    }

    /// <summary>‖actual − expected‖ / ‖expected‖ over all the weights.</summary>
    static double Distance(Dictionary<string, TorchSharp.torch.Tensor> expected, Dictionary<string, TorchSharp.torch.Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        double total = 0, norm = 0;
        foreach (var (name, w) in expected)
        {
            total += Math.Pow((actual[name] - w).norm().item<float>(), 2);
            norm += Math.Pow(w.norm().item<float>(), 2);
        }
        return Math.Sqrt(total / norm);
    }

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

        double distance = Distance(FinalPolicy(JobSpec.Load(solo).RunDirectory), FinalPolicy(group.RunDirectory));
        output.WriteLine($"‖w_group − w_one‖/‖w_one‖ = {distance:g3}");
        Assert.True(distance <= 1e-5, $"the group of two processes ended {distance:g3} (relative) from one learner");
    }

    /// <summary>
    /// An offline stage is one call to the group: a replica killed in it makes the leader train the stage again from its
    /// start, alone; the stage's steps are recorded once each, and the job ends with one learner's weights.
    /// </summary>
    [Fact]
    public async Task A_replica_killed_in_an_offline_stage_makes_the_survivors_train_the_stage_again_from_its_start()
    {
        const int sft = 60;
        string solo = Job(3, 1, "checkpoint-every = 1000", sftSteps: sft);
        using (var p = await RlftProcess.StartAsync(["run", solo], "rlft: job", Ct))
            Assert.Equal(0, await Exit(p, "rlft run, one learner"));

        using var group = await StartGroup(Job(3, 2, "checkpoint-every = 1000\n group-check-every = 5", sftSteps: sft));
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!group.Leader.Log.Contains("[Sft ", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline && !group.Leader.Process.HasExited, $"no SFT step within 3 minutes:\n{group.Leader.Log}\n{group.Replica.Log}");
            await Task.Delay(5, Ct);
        }
        group.Replica.Kill();
        Assert.Equal(0, await Exit(group.Leader, "learner node"));
        Assert.Contains("replica(s) lost during stage 0-sft", group.Leader.Log);
        // Every SFT step recorded once: the steps trained again after the loss are not recorded twice.
        var sftSteps = File.ReadLines(Path.Combine(group.RunDirectory, "metrics.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(m => m.GetProperty("stage").GetString() == "0-sft" && !m.TryGetProperty("eval", out _))
            .Select(m => m.GetProperty("step").GetInt32()).ToList();
        Assert.Equal(sft, sftSteps.Count);
        Assert.Equal(sft, sftSteps.Distinct().Count());
        double distance = Distance(FinalPolicy(JobSpec.Load(solo).RunDirectory), FinalPolicy(group.RunDirectory));
        output.WriteLine($"‖w_group − w_one‖/‖w_one‖ = {distance:g3}");
        Assert.True(distance <= 1e-5, $"the group that lost its replica in SFT ended {distance:g3} (relative) from one learner");
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

    static List<Dictionary<string, double>> PpoSteps(string runDir) =>
        File.ReadLines(Path.Combine(runDir, "metrics.jsonl")).Where(l => l.Contains("\"objective/", StringComparison.Ordinal))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.EnumerateObject()
                .Where(p => p.Value.ValueKind == System.Text.Json.JsonValueKind.Number).ToDictionary(p => p.Name, p => p.Value.GetDouble()))
            .ToList();

    /// <summary>
    /// The elastic group: three learners (the leader and two replica processes); one replica is killed with SIGKILL
    /// mid-stage (PPO on the full weights, GRPO on LoRA adapters), the two survivors train the step again from the state before it and go on; a new replica process then
    /// joins and takes a share from the next step. The job completes with every batch trained once, and its weights are
    /// one learner's (within 1e-5 relative): the lost step was neither lost nor applied twice.
    /// </summary>
    [Theory]
    [InlineData("ppo")]
    [InlineData("grpo-lora")]
    public async Task A_group_of_three_loses_a_replica_mid_step_goes_on_with_the_survivors_and_takes_a_new_one(string online)
    {
        const int steps = 40;
        string solo = Job(steps, 1, "checkpoint-every = 1000", online: online);
        using (var p = await RlftProcess.StartAsync(["run", solo], "rlft: job", Ct))
            Assert.Equal(0, await Exit(p, "rlft run, one learner"));

        string job = Job(steps, 3, "checkpoint-every = 1000\n group-check-every = 5", online: online);
        var (port, seed) = JobHarness.NewSeed();
        using var leader = await RlftProcess.StartAsync(["node", "--config", job, "--roles", "learner,rollout,reward", "--port", port.ToString()], "up with roles", Ct);
        using var a = await RlftProcess.StartAsync(["node", "--config", job, "--roles", "learner-replica", "--port", JobHarness.FreePort().ToString(), "--seed-nodes", seed], "up with roles", Ct);
        using var b = await RlftProcess.StartAsync(["node", "--config", job, "--roles", "learner-replica", "--port", JobHarness.FreePort().ToString(), "--seed-nodes", seed], "up with roles", Ct);
        string runDir = JobSpec.Load(job).RunDirectory;
        async Task WaitForSteps(int n, string what)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
            while (!File.Exists(Path.Combine(runDir, "metrics.jsonl")) || PpoSteps(runDir).Count < n)
            {
                Assert.True(DateTime.UtcNow < deadline && !leader.Process.HasExited, $"{what}: fewer than {n} PPO steps within 3 minutes:\n{leader.Log}");
                await Task.Delay(20, Ct);
            }
        }
        await WaitForSteps(3, "before the kill");
        var killed = Stopwatch.StartNew();
        a.Kill();
        int atKill = PpoSteps(runDir).Count;
        await WaitForSteps(atKill + 2, "after the kill");
        output.WriteLine($"from the kill to the next completed step: {killed.Elapsed.TotalSeconds:0.0} s (steps at the kill: {atKill})");
        using var c = await RlftProcess.StartAsync(["node", "--config", job, "--roles", "learner-replica", "--port", JobHarness.FreePort().ToString(), "--seed-nodes", seed], "up with roles", Ct);

        Assert.Equal(0, await Exit(leader, "learner node"));
        Assert.Equal(0, await Exit(b, "surviving replica", minutes: 1));
        Assert.Equal(0, await Exit(c, "joining replica", minutes: 1));
        var ppo = PpoSteps(runDir);
        Assert.Equal(steps, ppo.Count);
        Assert.Equal(steps, ppo.Select(m => m["step"]).Distinct().Count());
        // One replica lost and one joined (a survivor too slow to answer within the grace is taken for lost, then joins again).
        Assert.True(ppo[^1]["learners/lost"] >= 1);
        Assert.Equal(ppo[^1]["learners/lost"], ppo[^1]["learners/joined"]);
        Assert.Equal(3, ppo[^1]["learners/size"]);
        Assert.Contains(ppo, m => m["learners/size"] == 2);
        output.WriteLine($"group sizes by step: {string.Join(" ", ppo.Select(m => m["learners/size"]))}");

        double distance = Distance(FinalPolicy(JobSpec.Load(solo).RunDirectory), FinalPolicy(runDir));
        output.WriteLine($"‖w_elastic − w_one‖/‖w_one‖ = {distance:g3}");
        if (online == "grpo-lora")
        {
            // The adapters (GRPO's training) on their own: the base holds only the SFT stage's.
            static Dictionary<string, TorchSharp.torch.Tensor> Adapters(Dictionary<string, TorchSharp.torch.Tensor> w) =>
                w.Where(kv => kv.Key.StartsWith("adapter/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
            double adapters = Distance(Adapters(FinalPolicy(JobSpec.Load(solo).RunDirectory)), Adapters(FinalPolicy(runDir)));
            output.WriteLine($"adapters: ‖a_elastic − a_one‖/‖a_one‖ = {adapters:g3}");
            Assert.True(adapters <= 1e-5, $"the elastic group's adapters ended {adapters:g3} (relative) from one learner's");
        }
        Assert.True(distance <= 1e-5, $"the elastic group ended {distance:g3} (relative) from one learner");
    }
}
