using Akka.Configuration;
using Rlft.Actors.Configuration;

namespace Rlft.Actors.Deployment;

/// <summary>How a node finds its cluster: a hand-written seed list, or Akka.Management's cluster bootstrap over discovery.</summary>
internal enum DiscoveryMethod
{
    /// <summary><c>--seed-nodes</c>; the learner founds the cluster (the default, as before).</summary>
    None,
    /// <summary>Akka.Discovery's config method: the contact points (management endpoints) are listed in the job file.</summary>
    Config,
    /// <summary>Akka.Discovery.KubernetesApi: the contact points are the running pods that match a label selector.</summary>
    Kubernetes,
}

/// <summary>
/// Cluster bootstrap for one node: Akka.Management serves <c>/bootstrap/seed-nodes</c> on the management port; the node
/// looks its peers' management endpoints up through discovery, probes them, and joins the cluster one of them reports.
/// When none reports one, the contact point with the lowest address forms it, but only once
/// <c>required-contact-point-nr</c> contact points have answered (and, with <c>contact-with-all-contact-points</c>, every
/// discovered one) and the discovered set has been stable for <c>stable-margin</c>.
/// </summary>
internal sealed record ClusterDiscovery
{
    public const string DefaultServiceName = "rlft";
    public const int DefaultManagementPort = 8558;
    /// <summary>The label every RLFT pod carries in deploy/k8s; pods of other applications are never contact points.</summary>
    public const string DefaultPodLabelSelector = "app.kubernetes.io/part-of=rlft";
    const string Bootstrap = "akka.management.cluster.bootstrap";

    public required DiscoveryMethod Method { get; init; }
    /// <summary>Management HTTP host, advertised to peers and bound (the node's own address, as for remoting).</summary>
    public string ManagementHost { get; init; } = "127.0.0.1";
    public int ManagementPort { get; init; } = DefaultManagementPort;
    /// <summary>Kubernetes: which pods are contact points.</summary>
    public string PodLabelSelector { get; init; } = DefaultPodLabelSelector;
    /// <summary>Overrides <c>required-contact-point-nr</c> (else the job file's, else the number of listed endpoints for config discovery, else Akka's 2).</summary>
    public int? RequiredContactPoints { get; init; }

    /// <summary>
    /// The settings that must hold whatever the job file says (the method, this node's management endpoint): laid over
    /// the job file's akka section.
    /// </summary>
    public Config Forced() => ConfigurationFactory.ParseString($$"""
        akka.discovery.method = {{(Method == DiscoveryMethod.Kubernetes ? "kubernetes-api" : "config")}}
        akka.management.http {
          hostname = "{{ManagementHost}}"
          port = {{ManagementPort}}
          bind-hostname = "{{ManagementHost}}"
          bind-port = {{ManagementPort}}
        }
        {{(RequiredContactPoints is { } n ? $"{Bootstrap}.contact-point-discovery.required-contact-point-nr = {n}" : "")}}
        """);

    /// <summary>
    /// Defaults beneath the job file's akka section. Config discovery lists several nodes on one host, so contact points
    /// are not filtered on the management port; Kubernetes names the port "management" in the pod spec. The side of a
    /// partition holding the oldest learner survives (keep-oldest by role): with bootstrap, any contact point may have
    /// founded the cluster, so "oldest member" alone no longer means the learner.
    /// </summary>
    public Config Defaults(Config job)
    {
        string text = $$"""
            {{Bootstrap}}.contact-point-discovery.service-name = {{DefaultServiceName}}
            akka.cluster.split-brain-resolver.keep-oldest.role = learner
            """;
        if (Method == DiscoveryMethod.Config)
        {
            text += $"\n{Bootstrap}.contact-point.filter-on-fallback-port = off";
            text += $"\n{Bootstrap}.contact-point-discovery.required-contact-point-nr = {ConfigEndpoints(job).Count}";
        }
        else
        {
            text += $"""

                {Bootstrap}.contact-point-discovery.port-name = management
                akka.discovery.kubernetes-api.pod-label-selector = "{PodLabelSelector}"
                """;
        }
        return ConfigurationFactory.ParseString(text);
    }

    /// <summary>The service name the contact points are looked up under (the job file may choose its own).</summary>
    public static string ServiceName(Config job) =>
        job.HasPath($"{Bootstrap}.contact-point-discovery.service-name") ? job.GetString($"{Bootstrap}.contact-point-discovery.service-name") : DefaultServiceName;

    /// <summary>
    /// Config discovery's contact points, <c>akka.discovery.config.services.SERVICE.endpoints</c> in the job file: each
    /// <c>host:port</c> of a node's management endpoint. Refused with the key named when missing, empty or malformed.
    /// </summary>
    public static IReadOnlyList<string> ConfigEndpoints(Config job)
    {
        string key = $"akka.discovery.config.services.{ServiceName(job)}.endpoints";
        if (!job.HasPath(key))
            throw new ConfigException($"{key}: --discovery config needs the contact points (management endpoints host:port) listed in the job file");
        IList<string> endpoints;
        try { endpoints = job.GetStringList(key); }
        catch (Exception e) when (e is not ConfigException) { throw new ConfigException($"{key}: expected a list of \"host:port\" strings"); }
        if (endpoints.Count == 0) throw new ConfigException($"{key}: the list is empty");
        foreach (var e in endpoints)
        {
            int colon = e.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(e[(colon + 1)..], out int port) || port is < 1 or > 65535)
                throw new ConfigException($"{key}: '{e}' is not host:port");
        }
        return endpoints.ToList();
    }

    /// <summary>Checks what the node will read before it starts: the contact points (config) and the contact-point count.</summary>
    public void Check(Config job)
    {
        if (ManagementPort is < 1 or > 65535) throw new ConfigException($"--management-port: {ManagementPort} is not a TCP port");
        if (RequiredContactPoints is < 1) throw new ConfigException($"--required-contact-points: must be at least 1, got {RequiredContactPoints}");
        if (Method == DiscoveryMethod.Config) ConfigEndpoints(job);
        if (Method == DiscoveryMethod.Kubernetes && string.IsNullOrWhiteSpace(PodLabelSelector))
            throw new ConfigException("--pod-label-selector: empty (expected e.g. app.kubernetes.io/part-of=rlft)");
    }
}
