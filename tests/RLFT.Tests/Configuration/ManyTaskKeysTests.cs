using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Training;

namespace Rlft.Tests.Configuration;

/// <summary>The job keys of sequential and meta-learning jobs, read into the stage specs (their refusals are in MalformedInputTests).</summary>
public class ManyTaskKeysTests
{
    static JobSpec Parse(string stages) => JobSpec.Parse(RlftConfig.ParseText($"rlft.job {{ name = t\n stages = [\n{stages}\n] }}", "job.conf"));

    [Fact]
    public void Sequential_keys_are_read_with_their_defaults()
    {
        var job = Parse("""
            { kind = sft, data = "builtin:family/add", steps = 50 }
            { kind = reward-model, data = "builtin:preferences", steps = 5 }
            { kind = sft, data = "builtin:family/max", steps = 40, replay = 0.25, l2-sp = 0.01, ewc = 100, early-stopping { patience = 2, min-delta = 0.001 } }
            { kind = grpo, data = "builtin:family/max/prompts", steps = 30, optimizer { schedule = plateau, plateau { factor = 0.5, patience = 2 } } }
            """);
        var (first, later, online) = (job.Stages[0], job.Stages[2], job.Stages[3]);
        Assert.Equal((0.0, 0.0, 0.0, (EarlyStoppingOptions?)null, 0, (int?)null), (first.Replay, first.L2Sp, first.Ewc, first.EarlyStopping, first.EvalEvery, first.EwcStage));
        Assert.Equal((0.25, 0.01, 100.0), (later.Replay, later.L2Sp, later.Ewc));
        Assert.Equal(0, later.EwcStage);                                       // the reward-model stage does not train the policy
        Assert.Equal(new EarlyStoppingOptions { Patience = 2, MinDelta = 0.001 }, later.EarlyStopping);
        Assert.Equal(4, later.EvalEvery);                                      // a tenth of the steps by default
        Assert.Equal(LrSchedule.Plateau, online.Optimizer.Schedule);
        Assert.Equal(new PlateauOptions { Factor = 0.5, Patience = 2, Mode = MetricMode.Max }, online.Optimizer.Plateau); // online: the held-out reward
        Assert.Equal(3, online.EvalEvery);
        Assert.Equal(MetricMode.Min, Parse("{ kind = sft, data = x, steps = 5, optimizer { schedule = plateau } }").Stages[0].Optimizer.Plateau.Mode);
        Assert.Equal(7, Parse("{ kind = sft, data = x, steps = 50, eval-every = 7 }").Stages[0].EvalEvery);
    }

    [Fact]
    public void Meta_and_adapt_stages_read_their_sections()
    {
        var job = Parse("""
            { kind = meta, steps = 100, meta { tasks = [add, diff, times, max], tasks-per-round = 2, steps = 8, outer-lr = 0.5, inner = dpo } }
            { kind = adapt, steps = 10, adapt { tasks = [min, join], shots = 16 } }
            { kind = meta, steps = 3, meta { tasks = [add] } }
            """);
        var meta = job.Stages[0].Meta!;
        Assert.Equal(StageKind.Meta, job.Stages[0].Kind);
        Assert.Equal(["add", "diff", "times", "max"], meta.Tasks);
        Assert.Equal((2, 8, 0.5, StageKind.Dpo), (meta.TasksPerRound, meta.InnerSteps, meta.OuterLr, meta.Inner));
        Assert.Equal("", job.Stages[0].Data);
        var adapt = job.Stages[1].Adapt!;
        Assert.Equal((StageKind.Adapt, 10), (job.Stages[1].Kind, job.Stages[1].Steps));
        Assert.Equal(["min", "join"], adapt.Tasks);
        Assert.Equal(16, adapt.Shots);
        var defaults = job.Stages[2].Meta!;
        Assert.Equal((1, 5, 1.0, StageKind.Sft), (defaults.TasksPerRound, defaults.InnerSteps, defaults.OuterLr, defaults.Inner));
        Assert.Null(job.Stages[0].Adapt);
        Assert.Null(job.Stages[1].Meta);
    }

    [Theory]
    [InlineData("{ kind = reward-model, data = x, steps = 5, l2-sp = 1 }", "rlft.job.stages[0].l2-sp: applies to stages that train the policy on their own data")]
    [InlineData("{ kind = meta, steps = 5, replay = 0.5, meta { tasks = [add] } }", "rlft.job.stages[0].replay: applies to stages that train the policy")]
    [InlineData("{ kind = meta, steps = 5, meta { tasks = [] } }", "rlft.job.stages[0].meta.tasks: a meta stage needs at least one task")]
    [InlineData("{ kind = meta, steps = 5, meta { tasks = [add, add] } }", "rlft.job.stages[0].meta.tasks[1]: 'add' is named twice")]
    [InlineData("{ kind = meta, steps = 5, meta { tasks = [add], inner = ppo } }", "rlft.job.stages[0].meta.inner: 'ppo' is not one of sft, dpo")]
    [InlineData("{ kind = adapt, steps = 5 }", "rlft.job.stages[0].adapt.tasks: an adapt stage needs a task family")]
    [InlineData("{ kind = adapt, steps = 5, adapt { tasks = [min], shots = 0 } }", "rlft.job.stages[0].adapt.shots: 0 is outside [1,")]
    [InlineData("{ kind = sft, data = x, steps = 5, eval-every = 6 }", "rlft.job.stages[0].eval-every: 6 is outside [1, 5]")]
    [InlineData("{ kind = sft, data = x, steps = 5, optimizer { schedule = plateau, plateau { mode = best } } }", "rlft.job.stages[0].optimizer.plateau.mode: 'best' is not one of min, max")]
    [InlineData("{ kind = sft, data = x, steps = 5, optimizer { schedule = plateau, plateau { min-lr = 1 } } }", "rlft.job.stages[0].optimizer.plateau.min-lr: 1 is above the learning rate 0.0001")]
    [InlineData("{ kind = sft, data = x, steps = 5, optimizer { plateau { fctor = 1 } } }", "rlft.job.stages[0].optimizer.plateau.fctor: unknown key")]
    [InlineData("{ kind = sft, data = x, steps = 5 }\n{ kind = sft, data = x, steps = 5, ewc = -2 }", "rlft.job.stages[1].ewc: -2 is outside [0,")]
    public void Bad_values_are_refused_naming_the_key(string stages, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Parse(stages));
        Assert.Contains(e.Errors, m => m.StartsWith(expected, StringComparison.Ordinal));
    }
}
