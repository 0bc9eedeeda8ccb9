using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Cluster;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;

namespace Rlft.Actors.Deployment;

/// <summary>One probe's answer: ok (HTTP 200) or not (503), why, and the cluster as this node sees it.</summary>
internal sealed record HealthReport(bool Ok, string Reason, JsonObject Body);

/// <summary>
/// Liveness and readiness of one `rlft node` process, for orchestrators (Kubernetes probes) and scripts.
/// Alive: the process answers and the node's actor system has not terminated (a worker that is between two cluster
/// memberships, rejoining, is alive). Ready: this node is an Up member of the cluster; on a learner node also the job is
/// loaded (the coordinator singleton answers). A node that cannot join never becomes ready.
/// </summary>
internal sealed class NodeHealth
{
    readonly bool _learner;
    volatile RlftNode? _node;
    volatile bool _started;

    public NodeHealth(IReadOnlyList<string> roles) => _learner = roles.Contains("learner");

    /// <summary>The node the process currently runs (a worker replaces its node when it rejoins); null between two.</summary>
    public void Attach(RlftNode? node)
    {
        _node = node;
        if (node is not null) _started = true;
    }

    public HealthReport Alive()
    {
        var node = _node;
        if (node is not null && node.System.WhenTerminated.IsCompleted)
            return Report(false, "the actor system has terminated", node);
        return Report(true, node is null ? (_started ? "rejoining the cluster" : "starting") : "running", node);
    }

    public async Task<HealthReport> ReadyAsync(CancellationToken ct)
    {
        var node = _node;
        if (node is null) return Report(false, _started ? "rejoining the cluster" : "starting", null);
        if (node.System.WhenTerminated.IsCompleted) return Report(false, "the actor system has terminated", node);
        var self = Cluster.Get(node.System).SelfMember;
        // Before it has joined, a node's own member reads Removed: it is not in any cluster yet.
        if (self.Status != MemberStatus.Up) return Report(false, $"not an Up cluster member (status {self.Status})", node);
        if (_learner)
        {
            try { await node.Coordinator.Ask<JobStatus>(QueryJobStatus.Instance, TimeSpan.FromSeconds(2), ct); }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                return Report(false, "the job is not loaded yet (the coordinator does not answer)", node);
            }
        }
        return Report(true, "Up", node);
    }

    static HealthReport Report(bool ok, string reason, RlftNode? node)
    {
        var body = new JsonObject { ["status"] = ok ? "ok" : "unavailable", ["reason"] = reason };
        if (node is not null && !node.System.WhenTerminated.IsCompleted)
        {
            var cluster = Cluster.Get(node.System);
            body["self"] = new JsonObject { ["address"] = cluster.SelfAddress.ToString(), ["status"] = cluster.SelfMember.Status.ToString() };
            body["members"] = new JsonArray(node.Members().Select(m => (JsonNode)new JsonObject
            {
                ["address"] = m.Address,
                ["roles"] = new JsonArray(m.Roles.Select(r => (JsonNode)JsonValue.Create(r)!).ToArray()),
                ["status"] = m.Status,
            }).ToArray());
        }
        return new HealthReport(ok, reason, body);
    }
}
