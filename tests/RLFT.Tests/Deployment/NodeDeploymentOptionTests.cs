using System.Net;
using System.Net.Sockets;
using Rlft.Actors.Configuration;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Deployment;

/// <summary>`rlft node`'s deployment options refuse bad input with one line naming the option or key, exit 2, before the node starts.</summary>
public class NodeDeploymentOptionTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>In-process, on a thread of its own: a check that went missing would start a node, and the wait would fail.</summary>
    static async Task<(int Code, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await Task.Run(() => Rlft.Host.Commands.Cli.Run(args, o, e), Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        return (code, e.ToString());
    }

    static string JobWithEndpoints(string endpoints = "\"127.0.0.1:18558\"") =>
        JobHarness.JobFile(JobHarness.Ppo(2), around: $"akka.discovery.config.services.rlft.endpoints = [{endpoints}]");

    static void AssertRefused((int Code, string Err) result, string expected)
    {
        Assert.Equal(2, result.Code);
        Assert.Single(result.Err.TrimEnd().Split('\n'));
        Assert.Contains(expected, result.Err);
    }

    [Theory]
    [InlineData("--discovery", "dns", "--discovery: 'dns' is not one of none, config, kubernetes")]
    [InlineData("--discovery", "config", "--seed-nodes", "akka.tcp://rlft@127.0.0.1:4053", "--seed-nodes: not with --discovery config")]
    [InlineData("--discovery", "config", "--health-port", "70000", "--health-port: 70000 is not a TCP port")]
    [InlineData("--discovery", "config", "--management-port", "0", "--management-port: 0 is not a TCP port")]
    [InlineData("--discovery", "config", "--required-contact-points", "0", "--required-contact-points: must be at least 1, got 0")]
    [InlineData("--discovery", "kubernetes", "--pod-label-selector", " ", "--pod-label-selector: empty")]
    public async Task Bad_deployment_options_are_named(params string[] argsAndExpected) =>
        AssertRefused(await Run(["node", "--config", JobWithEndpoints(), "--roles", "rollout", .. argsAndExpected[..^1]]), argsAndExpected[^1]);

    [Fact]
    public async Task Config_discovery_needs_the_contact_points_in_the_job_file()
    {
        string quickstart = Path.Combine(RlftConfig.HoconDirectory, "quickstart.conf");
        AssertRefused(await Run("node", "--config", quickstart, "--roles", "rollout", "--discovery", "config"),
            "akka.discovery.config.services.rlft.endpoints: --discovery config needs the contact points");
        AssertRefused(await Run("node", "--config", JobWithEndpoints("\"127.0.0.1\""), "--roles", "rollout", "--discovery", "config"),
            "akka.discovery.config.services.rlft.endpoints: '127.0.0.1' is not host:port");
        AssertRefused(await Run("node", "--config", JobWithEndpoints(""), "--roles", "rollout", "--discovery", "config"),
            "akka.discovery.config.services.rlft.endpoints: the list is empty");
    }

    [Theory]
    [InlineData("--health-port")]
    [InlineData("--management-port")]
    public async Task A_port_in_use_is_refused_before_the_node_starts(string option)
    {
        var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            AssertRefused(await Run("node", "--config", JobWithEndpoints(), "--roles", "rollout", "--discovery", "config", option, port.ToString()),
                $"{option}: cannot listen on 127.0.0.1:{port}");
        }
        finally { taken.Stop(); }
    }
}
