using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Policy.Training;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Training;

/// <summary>Meta-learning and k-shot adaptation stages in the learner, on the built-in task family.</summary>
public class FamilyStageTests
{
    static WeightSet Weights(TorchLearnerEngine engine) => WeightSet.Snapshot(Rlft.Policy.Training.Regularization.TrainableParameters.Of(engine.Policy.Model));

    [Fact]
    public void A_meta_stage_moves_the_weights_and_reports_each_tasks_held_out_figures()
    {
        var job = JobHarness.Job("""
            { kind = meta, steps = 2, batch-size = 4, meta { tasks = [add, max, join], tasks-per-round = 2, steps = 2, outer-lr = 0.5 }
              optimizer { lr = 1e-3, schedule = constant } }
            """, extra: "eval-prompts = 4");
        Assert.Empty(JobValidator.Check(job));
        using var engine = new TorchLearnerEngine(job);
        using var before = Weights(engine);
        var progress = new List<Rlft.Actors.Protocol.StageProgress>();
        var done = engine.RunOfflineStage(job.Stages[0], progress.Add, TestContext.Current.CancellationToken);
        using var after = Weights(engine);

        Assert.True(before.DeltaTo(after).Norm() > 1e-4);
        Assert.Equal(1, done.PolicyVersion);
        Assert.Equal([1, 2], progress.Select(p => p.Step));
        Assert.All(progress, p => Assert.Equal(2, p.Metrics["outer/participants"]));
        foreach (var task in new[] { "add", "max", "join" })
            foreach (var label in new[] { "before", "after" })
            {
                Assert.InRange(done.Metrics[$"{label}/eval/{task}/reward"], 0, 1);
                Assert.True(done.Metrics[$"{label}/eval/{task}/loss"] > 0);
            }
        Assert.Equal(new[] { "add", "max", "join" }.Average(t => done.Metrics[$"after/eval/{t}/loss"]), done.Metrics["after/eval/loss"], 9);
    }

    [Fact]
    public void An_adapt_stage_measures_k_shot_adaptation_and_leaves_the_policy_as_it_was()
    {
        var job = JobHarness.Job("""
            { kind = adapt, steps = 3, batch-size = 4, adapt { tasks = [min, diff], shots = 4 }
              optimizer { lr = 3e-3, schedule = constant } }
            """, extra: "eval-prompts = 4");
        Assert.Empty(JobValidator.Check(job));
        using var engine = new TorchLearnerEngine(job);
        using var before = Weights(engine);
        var done = engine.RunOfflineStage(job.Stages[0], _ => { }, TestContext.Current.CancellationToken);
        using var after = Weights(engine);

        Assert.Equal(0.0, before.DeltaTo(after).Norm());
        Assert.Equal(0, done.PolicyVersion);
        // The curve starts at the zero-shot loss and ends at the adapted one; training on the shots lowers it.
        Assert.Equal(done.Metrics["before/eval/loss"], done.Metrics["after/adapt/loss@0"], 9);
        Assert.Equal(done.Metrics["after/eval/loss"], done.Metrics["after/adapt/loss@3"], 9);
        Assert.True(done.Metrics["after/adapt/loss@3"] < done.Metrics["after/adapt/loss@0"]);
    }

    [Fact]
    public void Meta_with_a_dpo_inner_loop_trains_on_the_tasks_preference_pairs()
    {
        var job = JobHarness.Job("""
            { kind = meta, steps = 2, batch-size = 4, meta { tasks = [add, max], tasks-per-round = 2, steps = 2, inner = dpo }
              optimizer { lr = 1e-3, schedule = constant } }
            """, extra: "eval-prompts = 4");
        Assert.Empty(JobValidator.Check(job));
        using var engine = new TorchLearnerEngine(job);
        using var before = Weights(engine);
        var progress = new List<Rlft.Actors.Protocol.StageProgress>();
        engine.RunOfflineStage(job.Stages[0], progress.Add, TestContext.Current.CancellationToken);
        using var after = Weights(engine);
        Assert.True(before.DeltaTo(after).Norm() > 1e-4);
        // DPO's first step from its own reference has the loss log 2 on every pair.
        Assert.All(progress, p => Assert.Equal(Math.Log(2), p.Metrics["inner/loss_first"], 5));
    }
}

public class AdaptationPlotTests
{
    [Fact]
    public void The_adaptation_plot_is_written_only_for_jobs_with_adapt_stages()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-plot").FullName;
        string path = Path.Combine(dir, RunRecorder.AdaptationFile);
        RunRecorder.PlotAdaptation(path, new Dictionary<string, object> { ["sft/after/eval/loss"] = 1.0, ["job/policy_version"] = 2.0 });
        Assert.False(File.Exists(path));
        var summary = new Dictionary<string, object>();
        foreach (var stage in new[] { "adapt-sft", "adapt-meta" })
            for (int k = 0; k <= 3; k++) summary[$"{stage}/after/adapt/loss@{k}"] = 2.0 / (k + 1);
        RunRecorder.PlotAdaptation(path, summary);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(path)[..4]);
    }

    [Fact]
    public void The_zero_and_few_shot_table_has_one_row_per_adapt_stage_in_job_order_and_lands_in_the_summary()
    {
        var summary = new Dictionary<string, object> { ["job"] = "meta", ["sft/after/eval/loss"] = 0.5 };
        foreach (var (stage, zero, after) in new[] { ("adapt-sft", 1.6, 1.1), ("adapt-meta", 1.9, 0.7) })
        {
            summary[$"{stage}/before/eval/loss"] = zero;
            summary[$"{stage}/before/eval/reward"] = 0.25;
            summary[$"{stage}/after/eval/loss"] = after;
            summary[$"{stage}/after/eval/reward"] = 0.5;
            for (int k = 0; k <= 10; k++) summary[$"{stage}/after/adapt/loss@{k}"] = zero + (after - zero) * k / 10;
        }
        var rows = AdaptationTable.From(summary);
        Assert.Equal([new AdaptationTable.Row("adapt-sft", 10, 1.6, 0.25, 1.1, 0.5), new AdaptationTable.Row("adapt-meta", 10, 1.9, 0.25, 0.7, 0.5)], rows);
        var lines = AdaptationTable.Lines(rows).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Matches(@"^adapt-meta\s+10\s+1\.900\s+0\.250\s+0\.700\s+0\.500$", lines[2]);
        Assert.Empty(AdaptationTable.From(new Dictionary<string, object> { ["sft/after/eval/loss"] = 0.5 }));

        string dir = Directory.CreateTempSubdirectory("rlft-table").FullName;
        using (var recorder = new RunRecorder(dir)) recorder.Finish(summary);
        using var written = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, RunRecorder.SummaryFile)));
        var table = written.RootElement.GetProperty("adaptation");
        Assert.Equal(["adapt-sft", "adapt-meta"], table.EnumerateArray().Select(r => r.GetProperty("stage").GetString()));
        Assert.Equal(0.7, table[1].GetProperty("adapted").GetProperty("loss").GetDouble());
        Assert.Equal(1.9, table[1].GetProperty("zero_shot").GetProperty("loss").GetDouble());
    }
}

public class RetentionTests
{
    [Fact]
    public void Later_stages_measure_every_earlier_sft_stage_again()
    {
        var job = JobHarness.Job("""
            { name = add, kind = sft, data = "builtin:family/add", steps = 2, batch-size = 4, optimizer { lr = 3e-3 } }
            { name = still, kind = sft, data = "builtin:family/max", steps = 1, batch-size = 4, optimizer { lr = 1e-12, schedule = constant } }
            { name = max, kind = sft, data = "builtin:family/max", steps = 3, batch-size = 8, optimizer { lr = 3e-2, schedule = constant } }
            """, extra: "eval-prompts = 8");
        Assert.Empty(JobValidator.Check(job));
        using var engine = new Rlft.Actors.Compute.TorchLearnerEngine(job);
        var done = job.Stages.Select(s => engine.RunOfflineStage(s, _ => { }, TestContext.Current.CancellationToken).Metrics).ToList();

        Assert.DoesNotContain(done[0].Keys, k => k.Contains("retention"));
        // A stage that barely moves the weights leaves the earlier stage's figures where they were.
        Assert.Equal(done[0]["after/eval/loss"], done[1]["after/retention/add/loss"], 4);
        Assert.Equal(done[0]["after/eval/reward"], done[1]["after/retention/add/reward"]);
        Assert.InRange(done[1]["after/retention/add/loss_increase"], -1e-4, 1e-4);
        // The third stage reports both earlier ones; a large step on another task changes the first one's loss.
        Assert.Contains("after/retention/still/loss", done[2].Keys);
        Assert.True(Math.Abs(done[2]["after/retention/add/loss_increase"]) > 1e-3);
        Assert.Equal(done[2]["after/retention/add/loss"] - done[0]["after/eval/loss"], done[2]["after/retention/add/loss_increase"], 9);
    }
}

public class SequentialSftTests
{
    [Fact]
    public void Replay_l2sp_and_ewc_apply_in_an_sft_stage_and_early_stopping_restores_the_best_held_out_loss()
    {
        var job = JobHarness.Job("""
            { name = add, kind = sft, data = "builtin:family/add", steps = 2, batch-size = 4, optimizer { lr = 3e-3 } }
            { name = max, kind = sft, data = "builtin:family/max", steps = 3, batch-size = 8, replay = 0.5, l2-sp = 0.5, ewc = 2
              optimizer { lr = 3e-3, schedule = constant } }
            { name = tiny, kind = sft, data = "builtin:family/times", steps = 40, batch-size = 4, eval-every = 2
              early-stopping { patience = 2 }
              optimizer { lr = 5e-2, schedule = constant } }
            """, extra: "eval-prompts = 4");
        Assert.Empty(JobValidator.Check(job));
        using var engine = new Rlft.Actors.Compute.TorchLearnerEngine(job);
        var steps = new List<Rlft.Actors.Protocol.StageProgress>();
        var done = job.Stages.Select(s => engine.RunOfflineStage(s, steps.Add, TestContext.Current.CancellationToken).Metrics).ToList();

        var second = steps.Where(p => p.Stage == 1).ToList();
        Assert.Equal(3, second.Count);
        Assert.All(second, p =>
        {
            Assert.Equal(4, p.Metrics["replay/replayed"]);   // half of each batch of 8 from the first stage
            Assert.True(p.Metrics["loss/l2_sp"] >= 0);
            Assert.True(p.Metrics["loss/ewc"] >= 0);
        });
        Assert.True(second[^1].Metrics["loss/l2_sp"] > 0);

        // At lr 5e-2 the held-out loss soon stops improving: the stage ends early and keeps its best weights.
        var third = steps.Where(p => p.Stage == 2).ToList();
        Assert.True(third.Count < 40, $"ran {third.Count} steps");
        var evaluated = third.Where(p => p.Metrics.ContainsKey("eval/loss")).ToList();
        Assert.Equal(third.Count / 2, evaluated.Count);
        double best = evaluated.Min(p => p.Metrics["eval/loss"]);
        Assert.Equal(best, done[2]["after/eval/loss"], 4);
        Assert.Equal(2 * (evaluated.FindIndex(p => p.Metrics["eval/loss"] == best) + 1), done[2]["after/early_stopping/best_step"]);
    }
}
