using Rlft.Actors.Compute;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Cluster;

/// <summary>Whole jobs through the actors, with every message serialized (serialize-messages = on).</summary>
public class JobThroughActorsTests(ITestOutputHelper output)
{
    static async Task<JobFinished> RunSingleNode(Rlft.Actors.Jobs.JobSpec job, IEngineFactory? engines = null)
    {
        await using var node = RlftNode.Create(new NodeOptions
        {
            Job = job,
            Roles = ["learner", "rollout", "reward"],
            ExtraHocon = JobHarness.TestHocon,
        }, engines ?? new TorchEngineFactory());
        await node.StartAsync(TestContext.Current.CancellationToken);
        return await node.Finished.WaitAsync(TimeSpan.FromMinutes(4), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task A_learner_node_that_leaves_the_cluster_mid_job_ends_the_job_as_failed_instead_of_hanging()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(500)));
        var online = new TaskCompletionSource();
        await using var node = RlftNode.Create(new NodeOptions
        {
            Job = job, Roles = ["learner", "rollout", "reward"], ExtraHocon = JobHarness.TestHocon,
            OnStatus = s => { if (s.StageKind == "Ppo") online.TrySetResult(); },
        }, new TorchEngineFactory());
        await node.StartAsync(ct);
        await online.Task.WaitAsync(TimeSpan.FromMinutes(2), ct);
        // What the split-brain resolver does to a downed node: its actor system shuts down.
        await Akka.Actor.CoordinatedShutdown.Get(node.System).Run(Akka.Actor.CoordinatedShutdown.ClusterDowningReason.Instance);
        var finished = await node.Finished.WaitAsync(TimeSpan.FromSeconds(60), ct);
        Assert.False(finished.Succeeded);
        Assert.Contains("left the cluster before the job finished", finished.Message);
    }

    [Fact]
    public async Task Checkpoint_every_writes_periodic_checkpoints_during_the_online_stage_and_the_final_one()
    {
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(5)), extra: "checkpoint-every = 2");
        var finished = await RunSingleNode(job);
        Assert.True(finished.Succeeded, finished.Message);
        // SFT is global steps 1-15 (a stage-boundary checkpoint after it); PPO steps 2 and 4 are global 17 and 19;
        // the final checkpoint is at 20.
        var names = Directory.GetDirectories(Path.Combine(job.RunDirectory, "checkpoints")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["step-15", "step-17", "step-19", "step-20"], names);
        foreach (var n in names)
            Assert.True(File.Exists(Path.Combine(job.RunDirectory, "checkpoints", n!, "policy", "model.safetensors")), $"{n} has no policy weights");
        var states = names.Select(n => Rlft.Actors.Jobs.ResumeState.Read(Path.Combine(job.RunDirectory, "checkpoints", n!))).ToList();
        Assert.Equal([(1, false, 0), (1, true, 2), (1, true, 4)], states.Take(3).Select(s => (s.Stage, s.Started, s.Step)));
        Assert.Equal([15, 17, 19, 20], states.Select(s => s.GlobalStep));
        Assert.True(states[^1].Completed);
        Assert.True(File.Exists(Path.Combine(job.RunDirectory, "checkpoints", "step-17", "trainer", "optimizer.bin")));
        Assert.Contains("checkpoint in", finished.Message);
    }

    [Fact]
    public async Task Keep_checkpoints_leaves_only_the_newest()
    {
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(7)), extra: "checkpoint-every = 2\n keep-checkpoints = 2");
        // A checkpoint an earlier run left in the directory is not this run's to delete.
        string earlier = Path.Combine(job.RunDirectory, "checkpoints", "step-99");
        Directory.CreateDirectory(earlier);
        var finished = await RunSingleNode(job);
        Assert.True(finished.Succeeded, finished.Message);
        // Written: step-15 (after SFT), 17, 19, 21 (PPO 2, 4, 6) and the final step-22; the two newest stay.
        var names = Directory.GetDirectories(Path.Combine(job.RunDirectory, "checkpoints")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["step-21", "step-22", "step-99"], names);
        Assert.True(Rlft.Actors.Jobs.ResumeState.Read(Path.Combine(job.RunDirectory, "checkpoints", "step-21")).Started);
    }

    [Fact]
    public async Task Sft_reward_model_and_ppo_complete_and_write_the_run_directory()
    {
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.RewardModel, JobHarness.Ppo(4, JobHarness.PipelineRewards)));
        var finished = await RunSingleNode(job);
        output.WriteLine(finished.Message);
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(4, finished.Summary["job/batches_trained"]);

        string run = job.RunDirectory;
        var metrics = JobHarness.TrainingSteps(run);
        Assert.Equal(15 + 10 + 4, metrics.Length);
        // Each stage's held-out figures, before and after it.
        Assert.Equal(2 * 3, File.ReadLines(Path.Combine(run, "metrics.jsonl")).Count(l => l.Contains("\"eval\":", StringComparison.Ordinal)));
        Assert.Contains("\"objective/kl\"", metrics[^1]);
        Assert.Contains("\"reward/rm\"", metrics[^1]);
        Assert.Contains("\"reward/repetition\"", metrics[^1]);
        Assert.True(File.Exists(Path.Combine(run, "summary.json")));
        Assert.True(new FileInfo(Path.Combine(run, "reward_kl.png")).Length > 1000);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(run, "tensorboard"), "events.out.tfevents.*"));
        Assert.Contains("2-ppo/before", File.ReadAllText(Path.Combine(run, "samples.jsonl")));
        var checkpoint = Directory.GetDirectories(Path.Combine(run, "checkpoints")).Single();
        Assert.EndsWith("step-29", checkpoint);
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json" })
            Assert.True(File.Exists(Path.Combine(checkpoint, "policy", f)), f);
    }

    [Fact]
    public async Task Dpo_and_grpo_stages_complete_through_the_actors_with_bf16_compute()
    {
        var job = JobHarness.Job(string.Join("\n",
            "{ kind = dpo, data = \"builtin:preferences\", steps = 5, batch-size = 8\n optimizer { lr = 1e-3 }\n}",
            "{ kind = grpo, data = \"builtin:prompts\", steps = 3, batch-size = 8\n grpo { group-size = 4 }\n sampling { max-new-tokens = 8 }\n}"),
            extra: "precision = bf16");
        var finished = await RunSingleNode(job);
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(3, finished.Summary["job/batches_trained"]);
        Assert.True(finished.Summary.ContainsKey("1-grpo/after/eval/reward"));
    }

    [Fact]
    public async Task Online_dpo_trains_on_pairs_judged_by_the_reward_pipeline()
    {
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft,
            "{ kind = online-dpo, data = \"builtin:prompts\", steps = 3, batch-size = 16\n sampling { max-new-tokens = 8 }\n rewards { components = [ { name = task, source = function, function = review-task }\n { name = length, source = length, target = 6, unit = words, weight = 0.5 } ] }\n}"));
        var finished = await RunSingleNode(job);
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(3, finished.Summary["job/batches_trained"]);
        var steps = JobHarness.TrainingSteps(job.RunDirectory)
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("stage").GetString() == "1-online-dpo").ToList();
        Assert.Equal(3, steps.Count);
        Assert.True(steps.Sum(e => e.GetProperty("dpo/pairs").GetDouble()) > 0, "no step had a preference pair");
        Assert.All(steps.Where(e => e.GetProperty("dpo/pairs").GetDouble() > 0), e => Assert.True(e.TryGetProperty("rewards/margins", out _)));
    }

    [Fact]
    public async Task A_bad_dataset_fails_the_job_with_a_message_naming_the_key()
    {
        var job = JobHarness.Job("""{ kind = sft, data = "/nonexistent/data.jsonl", steps = 2 }""");
        var finished = await RunSingleNode(job);
        Assert.False(finished.Succeeded);
        Assert.Contains("rlft.job.stages[0].data", finished.Message);
    }
}
