using System.Net;
using System.Text.Json.Nodes;
using Rlft.Tests.Cli;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Deployment;

/// <summary>
/// `rlft node --discovery config` as separate processes on loopback: no seed list anywhere, the contact points
/// (management endpoints) listed in the job file. Membership and roles are read from each node's /ready.
/// </summary>
[Collection(ProcessTests.Name)]
public class DiscoveryProcessTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;
    static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    sealed record Node(RlftProcess Process, int HealthPort, string Roles) : IDisposable
    {
        public void Dispose() => Process.Dispose();
    }

    static async Task<(HttpStatusCode Code, JsonObject Body)> Probe(int port, string path)
    {
        using var response = await Http.GetAsync($"http://127.0.0.1:{port}{path}", Ct);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!.AsObject());
    }

    /// <summary>A probe that, when the node stops answering, fails naming it with its exit code and everything it printed.</summary>
    static async Task<(HttpStatusCode Code, JsonObject Body)> ProbeNode(Node n, string path)
    {
        try { return await Probe(n.HealthPort, path); }
        catch (HttpRequestException e)
        {
            bool exited = n.Process.Process.WaitForExit(TimeSpan.FromSeconds(2));
            throw new Xunit.Sdk.XunitException($"the {n.Roles} node's {path} did not answer ({e.Message}); {(exited ? $"its process exited with {n.Process.Process.ExitCode}" : "its process is still running")}:\n{n.Process.Log}");
        }
    }

    static async Task<Node> StartNode(string jobFile, string roles, int managementPort)
    {
        int health = JobHarness.FreePort();
        var process = await RlftProcess.StartAsync(
            ["node", "--config", jobFile, "--roles", roles, "--discovery", "config", "--management-port", managementPort.ToString(), "--health-port", health.ToString()],
            "rlft: health on", Ct);
        return new Node(process, health, roles);
    }

    /// <summary>A short PPO job whose contact points are the given management ports; bootstrap timing shortened for the test.</summary>
    static string JobFile(int[] managementPorts, int steps) => JobHarness.JobFile(JobHarness.Ppo(steps), around: $$"""
        akka.discovery.config.services.rlft.endpoints = [{{string.Join(", ", managementPorts.Select(p => $"\"127.0.0.1:{p}\""))}}]
        akka.management.cluster.bootstrap {
          contact-point-discovery { stable-margin = 1s, interval = 500ms }
          contact-point.probe-interval = 500ms
        }
        """);

    [Fact]
    public async Task Three_node_processes_form_one_cluster_through_config_discovery_and_run_the_job_without_a_seed_list()
    {
        int[] management = [JobHarness.FreePort(), JobHarness.FreePort(), JobHarness.FreePort()];
        string jobFile = JobFile(management, steps: 20);
        using var learner = await StartNode(jobFile, "learner,reward", management[0]);
        using var a = await StartNode(jobFile, "rollout", management[1]);

        // Three contact points are listed, so (required-contact-point-nr = the listed count, all must answer) no cluster
        // forms while one of them is missing: both nodes are alive and not ready.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await ProbeNode(learner, "/alive")).Code != HttpStatusCode.OK || (await ProbeNode(a, "/alive")).Code != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the first two nodes never became alive");
            await Task.Delay(200, Ct);
        }
        await Task.Delay(TimeSpan.FromSeconds(4), Ct);   // well past the 1 s stable margin
        foreach (var n in new[] { learner, a })
        {
            var (code, body) = await ProbeNode(n, "/ready");
            output.WriteLine($"before the third node, {n.Roles}: {(int)code} {body.ToJsonString()}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, code);
            Assert.Contains("not an Up cluster member", (string)body["reason"]!);
        }

        using var b = await StartNode(jobFile, "rollout", management[2]);
        // The job starts as soon as the cluster has its roles, and a rollout process exits when it ends: all nodes are
        // probed at once in each round, and a rollout process that has already exited cleanly, having heard the job end
        // from the learner, counts as a member (the learner's view, which must be seen, then lists it Up).
        var view = new Dictionary<Node, JsonObject>();
        var heardTheEnd = new List<Node>();
        deadline = DateTime.UtcNow.AddSeconds(90);
        while (view.Count + heardTheEnd.Count < 3)
        {
            var pending = new[] { learner, a, b }.Where(n => !view.ContainsKey(n) && !heardTheEnd.Contains(n)).ToList();
            var probes = await Task.WhenAll(pending.Select(async n =>
            {
                if (n == learner) return (Node: n, Result: ((HttpStatusCode, JsonObject)?)await ProbeNode(n, "/ready"));
                try { return (Node: n, Result: await Probe(n.HealthPort, "/ready")); }
                catch (HttpRequestException) when (n.Process.Process.WaitForExit(TimeSpan.FromSeconds(5)) && n.Process.Process.ExitCode == 0)
                {
                    n.Process.Process.WaitForExit();   // its output read to the end
                    return (Node: n, Result: null);
                }
            }));
            foreach (var (n, result) in probes)
            {
                if (result is not var (code, body))
                {
                    Assert.True(n.Process.Log.Contains("the job ended (job completed)"), $"the {n.Roles} node exited before it was seen ready:\n{n.Process.Log}");
                    heardTheEnd.Add(n);
                    continue;
                }
                if (code == HttpStatusCode.OK && body["members"]!.AsArray() is { Count: 3 } all && all.All(m => (string)m!["status"]! == "Up")) view[n] = body;
                else Assert.True(DateTime.UtcNow < deadline, $"{n.Roles} node not ready: {body.ToJsonString()}\n{n.Process.Log}");
            }
            if (view.Count + heardTheEnd.Count < 3) await Task.Delay(100, Ct);
        }
        Assert.True(view.ContainsKey(learner), "the learner was never seen ready");
        output.WriteLine($"seen ready: {view.Count}; exited having heard the job end before a probe saw them ready: {heardTheEnd.Count}");
        // The learner saw all three Up and names their roles.
        output.WriteLine($"learner's view: {view[learner].ToJsonString()}");
        var members = view[learner]["members"]!.AsArray().Select(m => (Roles: string.Join(",", m!["roles"]!.AsArray().Select(r => (string)r!)), Status: (string)m["status"]!)).ToList();
        Assert.All(members, m => Assert.Equal("Up", m.Status));
        Assert.Equal(["learner,reward", "rollout", "rollout"], members.Select(m => m.Roles).Order(StringComparer.Ordinal));

        // The job runs over the bootstrapped cluster: the learner finishes it and both rollout processes hear it ended.
        await learner.Process.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(3), Ct);
        output.WriteLine(learner.Process.Log);
        Assert.Equal(0, learner.Process.Process.ExitCode);
        Assert.Contains("rlft: finished", learner.Process.Log);
        foreach (var worker in new[] { a, b })
        {
            await worker.Process.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
            Assert.Contains("the job ended", worker.Process.Log);
        }
    }

    /// <summary>
    /// Outside a pod, Kubernetes discovery has no API server to ask: the node keeps running (alive) and is never ready,
    /// and what it logs shows Akka.Discovery.KubernetesApi was the method the bootstrap asked.
    /// </summary>
    [Fact]
    public async Task A_node_that_cannot_find_its_cluster_stays_alive_and_is_never_ready()
    {
        string jobFile = JobFile([JobHarness.FreePort()], steps: 2);
        int management = JobHarness.FreePort(), health = JobHarness.FreePort();
        using var node = await RlftProcess.StartAsync(
            ["node", "--config", jobFile, "--roles", "rollout", "--discovery", "kubernetes", "--management-port", management.ToString(), "--health-port", health.ToString()],
            "rlft: health on", Ct, new Dictionary<string, string> { ["KUBERNETES_SERVICE_HOST"] = "" });
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!node.Log.Contains("KUBERNETES_SERVICE_HOST", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no Kubernetes lookup was tried:\n{node.Log}");
            await Task.Delay(250, Ct);
        }
        await Task.Delay(TimeSpan.FromSeconds(3), Ct);
        var (alive, _) = await Probe(health, "/alive");
        var (ready, body) = await Probe(health, "/ready");
        output.WriteLine(body.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, alive);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready);
        Assert.Empty(body["members"]!.AsArray());
        Assert.False(node.Process.HasExited);
    }
}
