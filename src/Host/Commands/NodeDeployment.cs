using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Rlft.Actors.Deployment;

namespace Rlft.Host.Commands;

/// <summary>
/// The options of `rlft node` for deployment: how the node finds its cluster (<c>--discovery</c>, Akka.Management's
/// cluster bootstrap) and where it answers liveness and readiness probes (<c>--health-port</c>).
/// </summary>
sealed class NodeDeployment
{
    readonly Option<string> _discovery = new("--discovery") { Description = "How to find the cluster: none (use --seed-nodes), config (contact points listed in the job file under akka.discovery.config.services.rlft.endpoints), kubernetes (pods matching --pod-label-selector)", DefaultValueFactory = _ => "none" };
    readonly Option<int> _managementPort = new("--management-port") { Description = "Akka.Management HTTP port, on --host (with --discovery)", DefaultValueFactory = _ => ClusterDiscovery.DefaultManagementPort };
    readonly Option<int?> _requiredContactPoints = new("--required-contact-points") { Description = "Contact points that must answer before a new cluster is formed (default: the endpoints listed for config discovery, 2 for kubernetes)" };
    readonly Option<string> _podLabelSelector = new("--pod-label-selector") { Description = "With --discovery kubernetes: the pods that are contact points", DefaultValueFactory = _ => ClusterDiscovery.DefaultPodLabelSelector };
    readonly Option<int?> _healthPort = new("--health-port") { Description = $"Serve {HealthEndpoint.AlivePath} and {HealthEndpoint.ReadyPath} on this port (off when not given)" };
    readonly Option<string> _healthHost = new("--health-host") { Description = "Address the health endpoint binds", DefaultValueFactory = _ => "127.0.0.1" };

    public IEnumerable<Option> Options => [_discovery, _managementPort, _requiredContactPoints, _podLabelSelector, _healthPort, _healthHost];

    /// <summary>What the options asked for, checked (one line naming the option when not).</summary>
    public sealed record Choice(ClusterDiscovery? Discovery, string HealthHost, int? HealthPort);

    public Choice Read(ParseResult r, string host)
    {
        var method = r.GetValue(_discovery) switch
        {
            "none" => DiscoveryMethod.None,
            "config" => DiscoveryMethod.Config,
            "kubernetes" => DiscoveryMethod.Kubernetes,
            var other => throw new CliException($"--discovery: '{other}' is not one of none, config, kubernetes"),
        };
        int? healthPort = r.GetValue(_healthPort);
        if (healthPort is < 0 or > 65535) throw new CliException($"--health-port: {healthPort} is not a TCP port");
        var discovery = method == DiscoveryMethod.None ? null : new ClusterDiscovery
        {
            Method = method, ManagementHost = host, ManagementPort = r.GetValue(_managementPort),
            RequiredContactPoints = r.GetValue(_requiredContactPoints), PodLabelSelector = r.GetValue(_podLabelSelector)!,
        };
        if (discovery is { ManagementPort: < 1 or > 65535 }) throw new CliException($"--management-port: {discovery.ManagementPort} is not a TCP port");
        return new Choice(discovery, r.GetValue(_healthHost)!, healthPort);
    }

    /// <summary>Refuses a management port that is taken before the node starts anything (Akka.Management binds it later).</summary>
    public static void CheckManagementPortFree(ClusterDiscovery discovery)
    {
        if (!IPAddress.TryParse(discovery.ManagementHost, out var address)) return;   // a name: Akka.Management reports it
        try
        {
            var listener = new TcpListener(address, discovery.ManagementPort);
            listener.Start();
            listener.Stop();
        }
        catch (SocketException e)
        {
            throw new CliException($"--management-port: cannot listen on {discovery.ManagementHost}:{discovery.ManagementPort}: {e.Message}");
        }
    }

    /// <summary>Starts the probes' endpoint before the node, so a taken port is refused before anything joins.</summary>
    public static async Task<HealthEndpoint?> StartHealthAsync(Choice choice, NodeHealth health, TextWriter output, CancellationToken ct)
    {
        if (choice.HealthPort is not { } port) return null;
        HealthEndpoint endpoint;
        try { endpoint = await HealthEndpoint.StartAsync(choice.HealthHost, port, health, ct); }
        catch (IOException e) { throw new CliException($"--health-port: cannot listen on {choice.HealthHost}:{port}: {e.Message}"); }
        output.WriteLine($"rlft: health on {endpoint.Url}{HealthEndpoint.AlivePath} and {HealthEndpoint.ReadyPath}");
        return endpoint;
    }
}
