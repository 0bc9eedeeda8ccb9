using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Rlft.Actors.Deployment;
using Rlft.Actors.Jobs;
using YamlDotNet.RepresentationModel;

namespace Rlft.Tests.Deployment;

/// <summary>
/// Static checks of deploy/k8s and deploy/docker (no container runtime or Kubernetes cluster is reachable here):
/// the YAML parses, every workload starts `rlft node` with options the real CLI accepts, its ports, probes, roles,
/// volumes and service account agree with each other and with the node's code, and the Dockerfiles copy what exists.
/// </summary>
public partial class DeployManifestTests
{
    static readonly string Root = FindRoot();
    static string K8s => Path.Combine(Root, "deploy", "k8s");
    static readonly string[] Roles = ["learner", "rollout", "reward", "feedback"];

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RLFT.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("RLFT.sln above " + AppContext.BaseDirectory);
    }

    /// <summary>Every document of every manifest, as JSON (scalars as strings) for easy reading.</summary>
    static List<(string File, JsonObject Doc)> Documents()
    {
        var docs = new List<(string, JsonObject)>();
        foreach (var file in Directory.GetFiles(K8s, "*.yaml").Order(StringComparer.Ordinal))
        {
            var stream = new YamlStream();
            using (var reader = new StreamReader(file)) stream.Load(reader);   // throws on YAML that does not parse
            foreach (var d in stream.Documents) docs.Add((Path.GetFileName(file), ToJson(d.RootNode).AsObject()));
        }
        return docs;
    }

    static JsonNode ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, (JsonNode?)ToJson(kv.Value)))),
        YamlSequenceNode s => new JsonArray(s.Children.Select(c => (JsonNode?)ToJson(c)).ToArray()),
        YamlScalarNode v => JsonValue.Create(v.Value ?? "")!,
        _ => throw new InvalidDataException($"unexpected YAML node {node.NodeType}"),
    };

    static string S(JsonNode? n) => n?.GetValue<string>() ?? "";

    static IEnumerable<JsonObject> Workloads(List<(string File, JsonObject Doc)> docs) =>
        docs.Select(d => d.Doc).Where(d => S(d["kind"]) is "StatefulSet" or "Deployment");

    static JsonObject Container(JsonObject workload) => workload["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Single()!.AsObject();
    static string[] Args(JsonObject workload) => Container(workload)["args"]!.AsArray().Select(S).ToArray();
    static string Arg(string[] args, string option) => args[Array.IndexOf(args, option) + 1];
    static Dictionary<string, string> Ports(JsonObject workload) =>
        Container(workload)["ports"]!.AsArray().ToDictionary(p => S(p!["name"]), p => S(p!["containerPort"]));
    static string Component(JsonObject workload) => S(workload["spec"]!["template"]!["metadata"]!["labels"]!["app.kubernetes.io/component"]);

    [Fact]
    public void Every_manifest_parses_and_the_kustomization_lists_them_all()
    {
        var docs = Documents();
        Assert.All(docs, d =>
        {
            Assert.False(string.IsNullOrEmpty(S(d.Doc["apiVersion"])), $"{d.File}: apiVersion");
            Assert.False(string.IsNullOrEmpty(S(d.Doc["kind"])), $"{d.File}: kind");
            if (S(d.Doc["kind"]) != "Kustomization") Assert.False(string.IsNullOrEmpty(S(d.Doc["metadata"]?["name"])), $"{d.File}: metadata.name");
        });
        var kustomization = docs.Single(d => S(d.Doc["kind"]) == "Kustomization").Doc;
        var listed = kustomization["resources"]!.AsArray().Select(S).Order(StringComparer.Ordinal);
        var files = Directory.GetFiles(K8s, "*.yaml").Select(Path.GetFileName).Where(f => f != "kustomization.yaml").Order(StringComparer.Ordinal);
        Assert.Equal(files, listed);
    }

    [Fact]
    public void The_learner_and_feedback_journal_are_StatefulSets_with_volumes_and_the_workers_are_Deployments()
    {
        var workloads = Workloads(Documents()).ToList();
        Assert.Equal(Roles.Order(StringComparer.Ordinal), workloads.Select(Component).Order(StringComparer.Ordinal));
        foreach (var w in workloads)
        {
            string role = Component(w);
            Assert.Equal(role is "learner" or "feedback" ? "StatefulSet" : "Deployment", S(w["kind"]));
            // The pod runs exactly the role its labels name, and a role rlft knows.
            Assert.Equal(role, Arg(Args(w), "--roles"));
            // Selector ⊆ template labels, and the template carries the label discovery selects pods by.
            var labels = w["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();
            foreach (var (key, value) in w["spec"]!["selector"]!["matchLabels"]!.AsObject()) Assert.Equal(S(value), S(labels[key]));
            var selector = ClusterDiscovery.DefaultPodLabelSelector.Split('=');
            Assert.Equal(selector[1], S(labels[selector[0]]));
            if (S(w["kind"]) == "StatefulSet")
            {
                // Each claim is mounted by the container.
                var mounts = Container(w)["volumeMounts"]!.AsArray().Select(m => S(m!["name"])).ToList();
                var claims = w["spec"]!["volumeClaimTemplates"]!.AsArray().Select(c => S(c!["metadata"]!["name"])).ToList();
                Assert.NotEmpty(claims);
                Assert.All(claims, c => Assert.Contains(c, mounts));
            }
        }
    }

    [Fact]
    public void Every_pod_runs_an_rlft_node_command_the_cli_accepts_with_ports_and_probes_that_match()
    {
        var docs = Documents();
        var cli = Rlft.Host.Commands.Cli.Build();
        foreach (var w in Workloads(docs))
        {
            string role = Component(w);
            var args = Args(w);
            var parsed = cli.Parse(args);
            Assert.True(parsed.Errors.Count == 0, $"{role}: {string.Join("; ", parsed.Errors.Select(e => e.Message))}");
            Assert.Equal("node", args[0]);
            Assert.Equal("kubernetes", Arg(args, "--discovery"));
            Assert.DoesNotContain("--seed-nodes", args);
            var ports = Ports(w);
            Assert.Equal(ports["management"], Arg(args, "--management-port"));
            Assert.Equal(ports["health"], Arg(args, "--health-port"));
            Assert.Equal(ports["remoting"], Arg(args, "--port"));
            Assert.Equal("0.0.0.0", Arg(args, "--health-host"));   // the kubelet probes the pod's address
            // Remoting and management are advertised on the pod's own address (downward API).
            Assert.Equal("$(POD_IP)", Arg(args, "--host"));
            Assert.Equal("status.podIP", S(Container(w)["env"]!.AsArray().Single(e => S(e!["name"]) == "POD_IP")!["valueFrom"]!["fieldRef"]!["fieldPath"]));
            if (args.Contains("--dashboard")) Assert.Equal(ports["dashboard"], new Uri(Arg(args, "--dashboard")).Port.ToString());
            var container = Container(w);
            Assert.Equal(HealthEndpoint.AlivePath, S(container["livenessProbe"]!["httpGet"]!["path"]));
            Assert.Equal(HealthEndpoint.ReadyPath, S(container["readinessProbe"]!["httpGet"]!["path"]));
            Assert.Equal("health", S(container["livenessProbe"]!["httpGet"]!["port"]));
            Assert.Equal("health", S(container["readinessProbe"]!["httpGet"]!["port"]));
        }
    }

    [Fact]
    public void Pods_may_list_pods_through_their_service_account()
    {
        var docs = Documents().Select(d => d.Doc).ToList();
        var binding = docs.Single(d => S(d["kind"]) == "RoleBinding");
        var role = docs.Single(d => S(d["kind"]) == "Role" && S(d["metadata"]!["name"]) == S(binding["roleRef"]!["name"]));
        Assert.Contains(role["rules"]!.AsArray(), r =>
            r!["resources"]!.AsArray().Select(S).Contains("pods") && new[] { "get", "list", "watch" }.All(v => r["verbs"]!.AsArray().Select(S).Contains(v)));
        var account = S(binding["subjects"]!.AsArray().Single()!["name"]);
        Assert.Contains(docs, d => S(d["kind"]) == "ServiceAccount" && S(d["metadata"]!["name"]) == account);
        Assert.All(Workloads(Documents()), w => Assert.Equal(account, S(w["spec"]!["template"]!["spec"]!["serviceAccountName"])));
    }

    [Fact]
    public void Services_select_pods_and_name_ports_those_pods_have()
    {
        var docs = Documents();
        var workloads = Workloads(docs).ToList();
        var services = docs.Select(d => d.Doc).Where(d => S(d["kind"]) == "Service").ToList();
        foreach (var service in services)
        {
            var selector = service["spec"]!["selector"]!.AsObject();
            var selected = workloads.Where(w => selector.All(kv => S(w["spec"]!["template"]!["metadata"]!["labels"]![kv.Key]) == S(kv.Value))).ToList();
            Assert.True(selected.Count > 0, $"service {S(service["metadata"]!["name"])} selects no pods");
            foreach (var port in service["spec"]!["ports"]!.AsArray())
                Assert.All(selected, w => Assert.Contains(S(port!["targetPort"]), Ports(w).Keys));
        }
        foreach (var set in workloads.Where(w => S(w["kind"]) == "StatefulSet"))
        {
            var governing = services.Single(s => S(s["metadata"]!["name"]) == S(set["spec"]!["serviceName"]));
            Assert.Equal("None", S(governing["spec"]!["clusterIP"]));
        }
    }

    [Fact]
    public void The_job_in_the_config_map_is_a_valid_job_whose_bootstrap_can_form_with_the_initial_pods()
    {
        var docs = Documents();
        var map = docs.Select(d => d.Doc).Single(d => S(d["kind"]) == "ConfigMap");
        var workloads = Workloads(docs).ToList();
        foreach (var w in workloads)
        {
            // --config names a file of that ConfigMap, mounted where the argument says.
            string config = Arg(Args(w), "--config");
            var mount = Container(w)["volumeMounts"]!.AsArray().Single(m => config.StartsWith(S(m!["mountPath"]) + "/", StringComparison.Ordinal))!;
            var volume = w["spec"]!["template"]!["spec"]!["volumes"]!.AsArray().Single(v => S(v!["name"]) == S(mount["name"]))!;
            Assert.Equal(S(map["metadata"]!["name"]), S(volume["configMap"]!["name"]));
            Assert.NotNull(map["data"]![Path.GetFileName(config)]);
        }
        string dir = Directory.CreateTempSubdirectory("rlft-k8s-job").FullName;
        string jobFile = Path.Combine(dir, "job.conf");
        File.WriteAllText(jobFile, S(map["data"]!["job.conf"]));
        var job = JobSpec.Load(jobFile);   // includes resolve against the presets the image ships (hocon/)
        Assert.NotNull(job.Feedback);
        // The run directory (learner) and the journal (feedback, in the run directory) are on the volumes.
        foreach (var w in workloads.Where(w => S(w["kind"]) == "StatefulSet"))
        {
            var claim = S(w["spec"]!["volumeClaimTemplates"]!.AsArray()[0]!["metadata"]!["name"]);
            var mount = Container(w)["volumeMounts"]!.AsArray().Single(m => S(m!["name"]) == claim)!;
            Assert.StartsWith(S(mount["mountPath"]), job.RunDirectory);
        }
        var feedback = workloads.Single(w => Component(w) == "feedback");
        Assert.Equal(Ports(feedback)["http"], new Uri(job.Feedback!.Urls.Single()).Port.ToString());
        // The bootstrap forms a new cluster only once required-contact-point-nr pods answered: the initial replicas must reach it.
        int required = job.Source.Config.GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr");
        int pods = workloads.Sum(w => int.Parse(S(w["spec"]!["replicas"])));
        Assert.InRange(required, 1, pods);
    }

    [GeneratedRegex(@"^(?<op>FROM|COPY|RUN|USER|EXPOSE|ENTRYPOINT)\s+(?<rest>.*)$")]
    private static partial Regex Instruction();

    /// <summary>The Dockerfile's instructions, continuation lines joined.</summary>
    static List<(string Op, string Text)> Instructions(string file)
    {
        var text = Regex.Replace(File.ReadAllText(file), @"\\\r?\n\s*", " ");
        return text.Split('\n').Select(l => Instruction().Match(l.Trim())).Where(m => m.Success)
            .Select(m => (m.Groups["op"].Value, m.Groups["rest"].Value.Trim())).ToList();
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void Each_dockerfile_builds_from_what_the_repository_holds_and_runs_rlft_as_a_non_root_user(string flavour)
    {
        string file = Path.Combine(Root, "deploy", "docker", $"{flavour}.Dockerfile");
        var steps = Instructions(file);
        // Multi-stage: the SDK builds, the ASP.NET Core runtime runs; both of the .NET the projects target.
        string framework = Regex.Match(File.ReadAllText(Path.Combine(Root, "Directory.Build.props")), @"<TargetFramework>net(\d+\.\d+)</TargetFramework>").Groups[1].Value;
        var from = steps.Where(s => s.Op == "FROM").Select(s => s.Text).ToList();
        Assert.Equal(2, from.Count);
        Assert.StartsWith($"mcr.microsoft.com/dotnet/sdk:{framework} AS build", from[0]);
        Assert.StartsWith($"mcr.microsoft.com/dotnet/aspnet:{framework}", from[1]);
        // Every COPY source from the build context exists, and .dockerignore does not drop it.
        var ignored = File.ReadAllLines(Path.Combine(Root, ".dockerignore")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        foreach (var (_, rest) in steps.Where(s => s.Op == "COPY" && !s.Text.StartsWith("--from", StringComparison.Ordinal)))
        {
            var parts = rest.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var source in parts[..^1])
            {
                Assert.True(File.Exists(Path.Combine(Root, source)) || Directory.Exists(Path.Combine(Root, source)), $"{flavour}.Dockerfile: COPY {source} does not exist");
                Assert.DoesNotContain(source.TrimEnd('/') + "/", ignored);
            }
        }
        // It publishes the CLI project with this flavour's libtorch backend, to where ENTRYPOINT runs it.
        var publish = Regex.Match(steps.Single(s => s.Op == "RUN" && s.Text.Contains("dotnet publish")).Text, @"dotnet publish (?<project>\S+) .*-o (?<out>\S+)");
        string project = Path.Combine(Root, publish.Groups["project"].Value);
        Assert.True(File.Exists(project));
        Assert.Contains("<AssemblyName>rlft</AssemblyName>", File.ReadAllText(project));
        Assert.Contains($"-p:RlftTorchBackend={flavour}", steps.Single(s => s.Text.Contains("dotnet publish")).Text);
        Assert.Contains($"Condition=\"'$(RlftTorchBackend)' == '{flavour}'\"", File.ReadAllText(Path.Combine(Root, "src", "Policy", "Policy.csproj")));
        Assert.Equal($"[\"{publish.Groups["out"].Value}/rlft\"]", steps.Single(s => s.Op == "ENTRYPOINT").Text);
        var user = steps.Last(s => s.Op == "USER").Text;
        Assert.DoesNotContain(user, new[] { "root", "0" });
        // The ports the manifests' containers use are the image's.
        var exposed = steps.Single(s => s.Op == "EXPOSE").Text.Split(' ');
        foreach (var w in Workloads(Documents())) Assert.All(Ports(w).Values, p => Assert.Contains(p, exposed));
    }

    [Fact]
    public void The_manifests_image_is_one_the_dockerfiles_build()
    {
        var docs = Documents();
        var kustomization = docs.Single(d => S(d.Doc["kind"]) == "Kustomization").Doc;
        var image = kustomization["images"]!.AsArray().Single()!;
        Assert.All(Workloads(docs), w => Assert.Equal(S(image["name"]), S(Container(w)["image"])));
        Assert.True(File.Exists(Path.Combine(Root, "deploy", "docker", $"{S(image["newTag"])}.Dockerfile")));
    }
}
