using Rlft.Actors.Configuration;

namespace Rlft.Tests.Cli;

/// <summary>`rlft run` and `rlft node` refuse bad input with one line naming the problem, before starting anything.</summary>
public class RunAndNodeCommandTests
{
    static (int Code, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, e.ToString());
    }

    static string Quickstart => Path.Combine(RlftConfig.HoconDirectory, "quickstart.conf");

    [Theory]
    [InlineData("run", "/nonexistent/job.conf", "config file not found: /nonexistent/job.conf")]
    [InlineData("node", "--config", "/nonexistent/job.conf", "--roles", "rollout", "config file not found")]
    public void Missing_job_files_are_named(params string[] argsAndExpected)
    {
        var (code, err) = Run(argsAndExpected[..^1]);
        Assert.NotEqual(0, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains(argsAndExpected[^1], err);
    }

    [Theory]
    [InlineData("--roles", "rollout", "--seed-nodes: a node without the learner role must join an existing cluster")]
    [InlineData("--roles", "learner", "--port: the founding node needs a fixed port")]
    [InlineData("--roles", "rollout", "--seed-nodes", "tcp://x:1", "--seed-nodes: 'tcp://x:1' is not an address")]
    [InlineData("--roles", "rollout,painter", "--seed-nodes", "akka.tcp://rlft@127.0.0.1:4053", "--roles: unknown role 'painter'")]
    [InlineData("--roles", "learner", "--port", "70000", "--port: 70000 is not a TCP port")]
    [InlineData("--roles", "learner,feedback", "--port", "4999", "--roles feedback: the job has no rlft.feedback section")]
    [InlineData("--roles", "rollout", "--seed-nodes", "akka.tcp://rlft@127.0.0.1:4053", "--resume", "runs/quickstart", "--resume: only the learner node resumes a run")]
    [InlineData("--roles", "learner", "--port", "4999", "--resume", "/elsewhere/quickstart", "--resume /elsewhere/quickstart: the job in")]
    public void Node_options_are_checked(params string[] argsAndExpected)
    {
        var (code, err) = Run(["node", "--config", Quickstart, .. argsAndExpected[..^1]]);
        Assert.NotEqual(0, code);
        Assert.Contains(argsAndExpected[^1], err);
    }

    [Fact]
    public void A_job_rated_by_people_cannot_run_as_a_plain_loop()
    {
        var (code, err) = Run("run", Path.Combine(RlftConfig.HoconDirectory, "human-ppo.conf"), "--plain-loop");
        Assert.NotEqual(0, code);
        Assert.Contains("--plain-loop: this job's rewards ask human raters", err);
    }

    [Fact]
    public void Run_overrides_must_be_key_value_and_valid()
    {
        Assert.Contains("--set seed: expected key=value", Run("run", Quickstart, "--set", "seed").Err);
        Assert.Contains("rlft.job.seed: expected an integer", Run("run", Quickstart, "--set", "seed=abc").Err);
        Assert.Contains("rlft.job.bogus: unknown key", Run("run", Quickstart, "--set", "bogus=1").Err);
    }
}
