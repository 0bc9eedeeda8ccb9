using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;

namespace Rlft.Tests.Configuration;

/// <summary><c>rlft.job.learners</c>: read with its default, and what a learner group cannot run refused before anything runs, naming the key.</summary>
public class LearnersKeyTests
{
    static JobSpec Parse(string stages, string job = "") =>
        JobSpec.Parse(RlftConfig.ParseText($"rlft.job {{ name = t\n {job}\n stages = [\n{stages}\n] }}", "job.conf"));

    const string Sft = "{ kind = sft, data = x, steps = 5, batch-size = 8 }";

    [Fact]
    public void Learners_default_to_one_and_are_read()
    {
        Assert.Equal(1, Parse(Sft).Learners);
        Assert.Equal(4, Parse(Sft, "learners = 4").Learners);
        // Everything a group refuses is fine for one learner.
        Assert.Equal(1, Parse("{ kind = sft, data = x, steps = 5, batch-size = 1 }\n{ kind = online-dpo, data = x, steps = 5, batch-size = 2 }").Learners);
    }

    [Fact]
    public void The_group_check_defaults_to_every_50_steps_and_is_read()
    {
        Assert.Equal(50, Parse(Sft).GroupCheckEvery);
        Assert.Equal(7, Parse(Sft, "learners = 2\n group-check-every = 7").GroupCheckEvery);
        Assert.Equal(0, Parse(Sft, "learners = 2\n group-check-every = 0").GroupCheckEvery);
    }

    [Theory]
    [InlineData("learners = 0", Sft, "rlft.job.learners: 0 learners cannot train; a job has at least one learner")]
    [InlineData("learners = -2", Sft, "rlft.job.learners: -2 learners cannot train")]
    [InlineData("learners = two", Sft, "rlft.job.learners: expected an integer, got 'two'")]
    [InlineData("learners = 65", Sft, "rlft.job.learners: 65 is more than the 64 learners one process hosts")]
    [InlineData("learners = 3", "{ kind = sft, data = x, steps = 5, batch-size = 2 }",
        "rlft.job.stages[0].batch-size: a batch of 2 examples cannot give each of 3 learners a share (with rlft.job.learners = 3); raise batch-size to at least 3")]
    [InlineData("learners = 4", "{ kind = dpo, data = x, steps = 5, batch-size = 3 }",
        "rlft.job.stages[0].batch-size: a batch of 3 pairs cannot give each of 4 learners a share")]
    [InlineData("learners = 2", "{ kind = ppo, data = x, steps = 5, batch-size = 8, ppo { mini-batches = 8 } }",
        "rlft.job.stages[0].ppo.mini-batches: 8 samples in 8 minibatch(es) of 1 cannot give each of 2 learners a share (with rlft.job.learners = 2); raise batch-size to at least 16")]
    [InlineData("learners = 3", "{ kind = grpo, data = x, steps = 5, batch-size = 8, grpo { group-size = 4 } }",
        "rlft.job.stages[0].batch-size: 8 samples make 2 GRPO group(s) of 4, which cannot give each of 3 learners a whole group (with rlft.job.learners = 3); raise batch-size to at least 12")]
    [InlineData("learners = 2", "{ kind = online-dpo, data = x, steps = 5, batch-size = 8 }", "rlft.job.stages[0].kind: online-dpo is not supported with rlft.job.learners = 2")]
    [InlineData("learners = 2", "{ kind = meta, steps = 5, meta { tasks = [add] } }", "rlft.job.stages[0].kind: meta is not supported with rlft.job.learners = 2")]
    [InlineData("learners = 2", "{ kind = classify, data = x, steps = 5 }", "rlft.job.stages[0].kind: classify is not supported with rlft.job.learners = 2: encoder stages")]
    [InlineData("learners = 2", "{ kind = sft, federated { rounds = 3 } }", "rlft.job.stages[0].federated: a federated stage does not train in a learner group (with rlft.job.learners = 2)")]
    [InlineData("learners = 2\n group-check-every = -1", Sft, "rlft.job.group-check-every:")]
    [InlineData("learners = 2\n group-check-every = often", Sft, "rlft.job.group-check-every: expected an integer, got 'often'")]
    [InlineData("learners = 2\n lora { rank = 4, dropout = 0.1 }", "{ kind = ppo, data = x, steps = 5, batch-size = 8 }", "rlft.job.lora.dropout: 0.1 is not supported with rlft.job.learners = 2")]
    public void What_a_group_cannot_run_is_refused_naming_the_key(string job, string stages, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Parse(stages, job));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_batch_that_shares_exactly_is_accepted()
    {
        Assert.Equal(3, Parse("{ kind = sft, data = x, steps = 5, batch-size = 3 }\n{ kind = grpo, data = x, steps = 5, batch-size = 12, grpo { group-size = 4 } }", "learners = 3").Learners);
        Assert.Equal(2, Parse("{ kind = ppo, data = x, steps = 5, batch-size = 8, ppo { mini-batches = 4 } }", "learners = 2").Learners);
    }
}
