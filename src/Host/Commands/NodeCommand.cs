using Rlft.Actors.Dashboard;
using System.CommandLine;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Deployment;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft node --config JOB.conf --roles rollout,reward [--port P] [--seed-nodes URI,… | --discovery config|kubernetes]
/// [--health-port P]`: one member of a cluster. The node with role learner hosts the coordinator, runs the job and exits when it ends;
/// other nodes serve until stopped (Ctrl-C leaves the cluster gracefully). A node with role client
/// (`--roles client --data PATH`) trains the job's federated stages on its own data, which it checks
/// before joining; it exits 2 if the coordinator refuses it (another model).
/// </summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "Job file (HOCON); every node of a cluster uses the same one", Required = true };
        var roles = new Option<string>("--roles") { Description = "Comma-separated roles: learner, learner-replica, rollout, reward, feedback, client", Required = true };
        var data = new Option<string?>("--data") { Description = "Client node: its own training data for the federated stages (a JSONL file, or a directory with sft.jsonl and preferences.jsonl); never sent" };
        var host = new Option<string>("--host") { Description = "Address to bind and advertise", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 = any free port)", DefaultValueFactory = _ => 0 };
        var seeds = new Option<string?>("--seed-nodes") { Description = "Comma-separated seed addresses, e.g. akka.tcp://rlft@10.0.0.1:4053" };
        var workers = new Option<int>("--rollout-workers") { Description = "Rollout actors on this node", DefaultValueFactory = _ => 1 };
        var set = new Option<string[]>("--set") { Description = "Override a job key: --set seed=3 (repeatable)" };
        var resume = new Option<string?>("--resume") { Description = "Learner node: continue the run in RUN_DIR from its newest checkpoint" };
        var otlp = OtlpExport.Option();
        var dashboard = new Option<string?>("--dashboard") { Description = "Learner node: serve a live page of the job at this address, e.g. http://127.0.0.1:8090" };
        var deployment = new NodeDeployment();
        var command = new Command("node", "Start a cluster node with the given roles.") { config, roles, data, host, port, seeds, workers, set, resume, otlp, dashboard };
        foreach (var option in deployment.Options) command.Options.Add(option);
        command.SetAction(async (r, ct) =>
        {
            var deploy = deployment.Read(r, r.GetValue(host)!);
            using var telemetry = OtlpExport.Start(r.GetValue(otlp), "rlft-node");
            return await RunAsync(r.GetValue(config)!, r.GetValue(roles)!, r.GetValue(data), r.GetValue(host)!, r.GetValue(port),
                r.GetValue(seeds), r.GetValue(workers), r.GetValue(set) ?? [], r.GetValue(resume), r.GetValue(dashboard), deploy, r.InvocationConfiguration.Output, ct);
        });
        return command;
    }

    static async Task<int> RunAsync(string configPath, string roleList, string? dataPath, string host, int port, string? seedList, int workers, string[] overrides, string? resume, string? dashboardUrl, NodeDeployment.Choice deploy, TextWriter output, CancellationToken ct)
    {
        if (dashboardUrl is not null) JobPage.CheckUrl(dashboardUrl);
        if (port is < 0 or > 65535) throw new CliException($"--port: {port} is not a TCP port");
        if (workers < 1) throw new CliException($"--rollout-workers: must be at least 1, got {workers}");
        var roles = roleList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // What this node will read and build is checked before it joins anything: the learner's models, datasets and
        // output directory, a reward node's reward specs.
        var parts = (roles.Contains("learner") || roles.Contains("learner-replica") ? JobParts.Learner : JobParts.None) | (roles.Contains("reward") ? JobParts.Rewards : JobParts.None);
        configPath = RlftConfig.ResolvePath(configPath);
        var job = JobSpec.LoadChecked(configPath, overrides, parts);
        if (dataPath is not null && !roles.Contains("client")) throw new CliException("--data: only a node with role client holds training data of its own");
        var clientData = roles.Contains("client") ? Rlft.Actors.Compute.Federated.ClientData.Check(dataPath, job) : null;
        var seedNodes = (seedList ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var s in seedNodes)
            if (!s.StartsWith($"akka.tcp://{RlftNode.SystemName}@", StringComparison.Ordinal))
                throw new CliException($"--seed-nodes: '{s}' is not an address like akka.tcp://{RlftNode.SystemName}@HOST:PORT");
        var discovery = deploy.Discovery;
        if (discovery is not null && seedNodes.Length > 0)
            throw new CliException($"--seed-nodes: not with --discovery {discovery.Method.ToString().ToLowerInvariant()} (the cluster is found through discovery)");
        if (discovery is null && seedNodes.Length == 0 && !roles.Contains("learner"))
            throw new CliException("--seed-nodes: a node without the learner role must join an existing cluster (or find it with --discovery)");
        if (discovery is null && seedNodes.Length == 0 && port == 0)
            throw new CliException("--port: the founding node needs a fixed port so others can name it as a seed");
        discovery?.Check(job.Source.Config);
        if (dashboardUrl is not null && !roles.Contains("learner")) throw new CliException("--dashboard: the job page is served by the learner node");
        if (resume is not null && !roles.Contains("learner")) throw new CliException("--resume: only the learner node resumes a run; other nodes simply join");
        // Ports last among the checks, still before anything is written or joined: the probes answer from here on
        // (not ready until the node is an Up member).
        if (discovery is not null) NodeDeployment.CheckManagementPortFree(discovery);
        var health = new NodeHealth(roles);
        await using var healthEndpoint = await NodeDeployment.StartHealthAsync(deploy, health, output, ct);
        ResumePoint? resumePoint = null;
        if (resume is not null)
        {
            if (Path.GetFullPath(resume).TrimEnd(Path.DirectorySeparatorChar) != Path.GetFullPath(job.RunDirectory).TrimEnd(Path.DirectorySeparatorChar))
                throw new CliException($"--resume {resume}: the job in {configPath} writes to {Path.GetFullPath(job.RunDirectory)}, not there");
            resumePoint = ResumePoint.Latest(job.RunDirectory);
            output.WriteLine($"rlft: resuming from {resumePoint.Directory} (stage {resumePoint.State.Stage}, step {resumePoint.State.Step}, policy v{resumePoint.State.PolicyVersion})");
        }
        else if (roles.Contains("learner")) JobRecord.Of(configPath, overrides).WriteTo(job.RunDirectory);   // as `rlft run` does

        if (roles.Contains("learner"))
        {
            var progress = new ProgressLine(output);
            JobDashboard? page = null;
            var learner = RlftNode.Create(new NodeOptions
            {
                Job = job, Roles = roles, Hostname = host, Port = port, SeedNodes = seedNodes, Discovery = discovery, RolloutWorkers = workers, Resume = resumePoint,
                LearnerReplicasInProcess = false,
                OnStatus = s => { progress.Update(s); page?.Update(s); },
            }, new TorchEngineFactory());
            await using (learner)
            {
                await StartAsync(learner, host, port, roles, output, ct);
                health.Attach(learner);
                await using var dashboard = page = dashboardUrl is null ? null : await JobPage.StartAsync(dashboardUrl, job, learner, output, ct);
                try
                {
                    var finished = await learner.Finished.WaitAsync(ct);
                    if (dashboard is not null) await dashboard.FinishAsync(finished);
                    output.WriteLine($"rlft: {(finished.Succeeded ? "finished" : "FAILED")}: {finished.Message}");
                    RunCommand.PrintSummary(output, finished.Summary);
                    return finished.Succeeded ? 0 : 1;
                }
                catch (OperationCanceledException)
                {
                    output.WriteLine("rlft: leaving the cluster");
                    return 130;
                }
            }
        }

        // A worker node serves until Ctrl-C or until the coordinator says the job ended. When the cluster removes
        // it before that (the learner process died, or the split-brain resolver downed this node), it starts a
        // fresh member in the same process and joins again through the seed nodes: a learner restarted with
        // --resume finds it there.
        while (true)
        {
            var node = RlftNode.Create(new NodeOptions
            {
                Job = job, Roles = roles, Hostname = host, Port = port, SeedNodes = seedNodes, Discovery = discovery, RolloutWorkers = workers, ClientData = clientData,
            }, new TorchEngineFactory());
            await using (node)
            {
                try
                {
                    await StartAsync(node, host, port, roles, output, ct);
                    health.Attach(node);
                    var removed = node.System.WhenTerminated;
                    var first = await Task.WhenAny(removed, node.JobEnded, Task.Delay(Timeout.Infinite, ct));
                    ct.ThrowIfCancellationRequested();
                    if (first == node.JobEnded && node.JobEnded.Result.StartsWith(FederatedClientActor.StopPrefix, StringComparison.Ordinal))
                    {
                        output.WriteLine($"rlft: {node.JobEnded.Result}");
                        return Cli.InvalidInput;
                    }
                    if (first == node.JobEnded)
                    {
                        output.WriteLine($"rlft: the job ended ({node.JobEnded.Result}); leaving the cluster");
                        return 0;
                    }
                }
                catch (OperationCanceledException)
                {
                    output.WriteLine("rlft: leaving the cluster");
                    return 130;
                }
                health.Attach(null);
                output.WriteLine($"rlft: this node is no longer a cluster member (the learner went away, or it was downed); joining again through {(discovery is null ? "the seed nodes" : "discovery")}");
            }
        }
    }

    static async Task StartAsync(RlftNode node, string host, int port, string[] roles, TextWriter output, CancellationToken ct)
    {
        try { await node.StartAsync(ct); }
        catch (IOException e) when (e.Message.StartsWith("--management-port", StringComparison.Ordinal)) { throw new CliException(e.Message); }
        output.WriteLine($"rlft: node {host}:{port} up with roles {string.Join(",", roles)}");
        if (node.Discovery is { } d)
            output.WriteLine($"rlft: finding the cluster through {d.Method.ToString().ToLowerInvariant()} discovery (this node's contact point: {d.ManagementHost}:{d.ManagementPort})");
        if (node.FeedbackUrls.Count > 0) output.WriteLine($"rlft: rater page and API on {string.Join(", ", node.FeedbackUrls)}");
    }
}
