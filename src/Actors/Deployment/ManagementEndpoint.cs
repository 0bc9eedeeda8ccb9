using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Cluster.Bootstrap.ContactPoint;
using Akka.Management.Dsl;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using static Akka.Management.Cluster.Bootstrap.ContactPoint.HttpBootstrapJsonProtocol;

namespace Rlft.Actors.Deployment;

/// <summary>
/// A node's contact point for cluster bootstrap: <c>GET /bootstrap/seed-nodes</c> on the management port, served by
/// Kestrel with the body Akka.Management's own route writes (Newtonsoft JSON of <see cref="SeedNodes"/>), so
/// Akka.Management's prober on the other nodes reads it unchanged.
/// Why not Akka.Management's HTTP server: in 1.5.73 it runs on Ceen.Httpd 0.9.9, and the registry here serves only
/// 0.9.10, whose <c>HttpServer.ListenAsync</c> has another signature: binding fails with MissingMethodException.
/// Discovery, probing and the join decision stay Akka.Management's (<see cref="ClusterBootstrap"/>).
/// </summary>
internal sealed class ManagementEndpoint : IAsyncDisposable
{
    public const string SeedNodesPath = "/bootstrap/seed-nodes";
    readonly WebApplication _app;

    ManagementEndpoint(WebApplication app) => _app = app;

    /// <summary>Serves the contact point, tells the bootstrap where it is, and starts the bootstrap.</summary>
    public static async Task<ManagementEndpoint> StartAsync(ActorSystem system, ClusterDiscovery discovery, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder(Runtime.OwnHosts.Web());
        builder.Logging.ClearProviders();
        string host = discovery.ManagementHost.Contains(':') ? $"[{discovery.ManagementHost}]" : discovery.ManagementHost;
        builder.WebHost.UseUrls($"http://{host}:{discovery.ManagementPort}");
        var app = builder.Build();
        var bootstrap = ClusterBootstrap.Get(system);
        const int maxSeeds = 5;   // as Akka.Management's route (ContactPoint.MaxSeedNodesToExpose)
        app.MapGet(SeedNodesPath, () => Results.Text(JsonConvert.SerializeObject(SeedNodesOf(Cluster.Get(system), maxSeeds)), "application/json"));
        try { await app.StartAsync(ct); }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new IOException($"--management-port: cannot listen on {discovery.ManagementHost}:{discovery.ManagementPort}: {e.Message}", e);
        }
        // Routes() is how Akka.Management's server hands the bootstrap its own contact point; the routes themselves
        // are not served (Kestrel serves them above).
        bootstrap.Routes(ManagementRouteProviderSettings.Create(new Uri($"http://{host}:{discovery.ManagementPort}/"), readOnly: true));
        await bootstrap.Start();
        return new ManagementEndpoint(app);
    }

    /// <summary>What a probing node learns from this one: itself, and the members it may join through (as Akka.Management's route).</summary>
    internal static SeedNodes SeedNodesOf(Cluster cluster, int max)
    {
        var self = cluster.SelfMember;
        if (self.Status is MemberStatus.Down or MemberStatus.Exiting or MemberStatus.Leaving or MemberStatus.Removed)
            return new SeedNodes(self.UniqueAddress.Address, ImmutableList<ClusterMember>.Empty);
        var state = cluster.State;
        var members = state.Members
            .Where(m => !state.Unreachable.Contains(m) && m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining)
            .Take(max)
            .Select(m => new ClusterMember(m.UniqueAddress.Address, m.UniqueAddress.Uid, m.Status, m.Roles))
            .ToImmutableList();
        return new SeedNodes(self.UniqueAddress.Address, members);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
