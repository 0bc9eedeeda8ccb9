using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rlft.Actors.Compute;
using Microsoft.AspNetCore.Builder;
using Rlft.Actors.Configuration;
using Rlft.Actors.Deployment;
using Rlft.Actors.Feedback;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.Runtime;

/// <summary>Creates the compute engines for a node (the composition root supplies the real ones).</summary>
internal interface IEngineFactory
{
    /// <summary><paramref name="resumeFrom"/>: a checkpoint directory whose models and training state the learner starts from.</summary>
    ILearnerEngine CreateLearner(JobSpec job, string? resumeFrom = null);
    IRolloutEngine CreateRollout(JobSpec job, int index);
    /// <summary><paramref name="humanRatings"/> reaches the feedback actor when the job's rewards ask raters (else null).</summary>
    IRewardEngine CreateReward(JobSpec job, int index, Rlft.Reward.Sources.IHumanRatingPort? humanRatings);
    /// <summary>One member's learner in a learner group whose members live in separate processes (the leader's, or a replica's).</summary>
    ILearnerEngine CreateGroupMember(JobSpec job, string? resumeFrom, Rlft.Policy.Collectives.LearnerGroup group) =>
        throw new NotSupportedException("these engines do not train in a learner group across nodes");
}

/// <summary>How one node joins the cluster and what it hosts.</summary>
internal sealed record NodeOptions
{
    public required JobSpec Job { get; init; }
    /// <summary>
    /// Any of learner, learner-replica (a member of the learner's data-parallel group, see <see cref="ClusterLearnerGroup"/>),
    /// rollout, reward, feedback (the job's rater endpoint, from its rlft.feedback section), client (a member of the
    /// federation, training federated stages on <see cref="ClientData"/>).
    /// </summary>
    public required IReadOnlyList<string> Roles { get; init; }
    public string Hostname { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (then the node can only be its own seed).</summary>
    public int Port { get; init; }
    /// <summary>Seed node addresses (akka.tcp://rlft@host:port); empty: this node seeds itself (unless <see cref="Discovery"/> finds the cluster).</summary>
    public IReadOnlyList<string> SeedNodes { get; init; } = [];
    /// <summary>Cluster bootstrap through discovery instead of a seed list (Akka.Management); null: seed nodes as above.</summary>
    public ClusterDiscovery? Discovery { get; init; }
    /// <summary>Extra HOCON laid over hocon/akka.conf (e.g. serialize-messages = on in tests).</summary>
    public string ExtraHocon { get; init; } = "";
    public int RolloutWorkers { get; init; } = 1;
    /// <summary>For a client node: its own training data (checked by <see cref="Compute.Federated.ClientData.Check"/>).</summary>
    public Compute.Federated.ClientData? ClientData { get; init; }
    /// <summary>For a client node: where it writes the job's preset model when the job names no model.path (default: a folder in the temp directory per client).</summary>
    public string? ClientWorkDirectory { get; init; }
    /// <summary>For a learner node: continue the run from this checkpoint (<c>--resume</c>) instead of starting it.</summary>
    public ResumePoint? Resume { get; init; }
    public TimeSpan WorkTimeout { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>
    /// With <c>learners = N</c>: true (<c>rlft run</c>, tests) hosts the N − 1 replicas in this learner's process; false
    /// (<c>rlft node</c>) forms the group from N − 1 learner-replica nodes, waiting up to <see cref="WorkTimeout"/> for them.
    /// </summary>
    public bool LearnerReplicasInProcess { get; init; } = true;
    public Action<JobStatus>? OnStatus { get; init; }
    public LogLevel MinimumLogLevel { get; init; } = LogLevel.Warning;
    /// <summary>Where the node's logs (Akka's included) go; the console when null.</summary>
    public ILoggerProvider? LoggerProvider { get; init; }
}

/// <summary>Marker for the coordinator singleton (proxy) in the actor registry.</summary>
internal sealed class CoordinatorKey;

/// <summary>
/// One RLFT node: an Akka.Cluster member inside a Microsoft.Extensions.Hosting host. `rlft run` is a
/// node with every role (a one-member cluster); `rlft node` starts members with chosen roles. The same
/// actors and messages serve both.
/// </summary>
internal sealed class RlftNode : IAsyncDisposable
{
    public const string SystemName = "rlft";
    public IHost Host { get; }
    public Task<JobFinished> Finished { get; }
    /// <summary>On a worker node: completes (with the reason) when the coordinator says the job has ended.</summary>
    public Task<string> JobEnded => _jobEnded.Task;
    readonly TaskCompletionSource<string> _jobEnded;
    readonly ClusterDiscovery? _discovery;
    ManagementEndpoint? _management;

    RlftNode(IHost host, Task<JobFinished> finished, TaskCompletionSource<string> jobEnded, ClusterDiscovery? discovery) =>
        (Host, Finished, _jobEnded, _discovery) = (host, finished, jobEnded, discovery);

    public ActorSystem System => Host.Services.GetRequiredService<ActorSystem>();

    /// <summary>How this node finds its cluster when it has no seed list (null: seed nodes).</summary>
    public ClusterDiscovery? Discovery => _discovery;

    /// <summary>The coordinator singleton on this node (only meaningful on the node with role learner).</summary>
    public ActorSelection Coordinator => System.ActorSelection("/user/coordinator/coordinator");

    /// <summary>The cluster's members as this node sees them (address, roles, status).</summary>
    public IReadOnlyList<Dashboard.MemberView> Members() =>
        Akka.Cluster.Cluster.Get(System).State.Members
            .Select(m => new Dashboard.MemberView(m.Address.ToString(), m.Roles.Order(StringComparer.Ordinal).ToArray(), m.Status.ToString())).ToList();

    /// <summary>Where the rater page and API listen, on a node with the feedback role (empty otherwise, and before start).</summary>
    public IReadOnlyList<string> FeedbackUrls => Host is WebApplication web ? web.Urls.ToList() : [];

    public static RlftNode Create(NodeOptions options, IEngineFactory engines)
    {
        var roles = options.Roles.Select(r => r.Trim().ToLowerInvariant()).ToArray();
        foreach (var r in roles)
            if (r is not ("learner" or "learner-replica" or "rollout" or "reward" or "feedback" or "client"))
                throw new ConfigException($"--roles: unknown role '{r}' (expected learner, learner-replica, rollout, reward, feedback, client)");
        if (roles.Contains("learner-replica") && roles.Contains("learner"))
            throw new ConfigException("--roles: a node is the learner (the group's leader) or a learner-replica, not both");
        if (roles.Contains("learner-replica") && options.Job.Learners < 2)
            throw new ConfigException($"--roles learner-replica: the job trains with one learner (rlft.job.learners = {options.Job.Learners}); a replica joins a group of learners = 2 or more");
        if (roles.Contains("client") && options.ClientData is null)
            throw new ConfigException("--data: a client node trains on its own data: rlft node --roles client --data PATH");
        var finished = new TaskCompletionSource<JobFinished>(TaskCreationOptions.RunContinuationsAsynchronously);
        var jobEnded = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var job = options.Job;
        var baseConfig = RlftConfig.BaseAkka().Config;
        // Akka settings in the job file (e.g. the split-brain resolver's timing) apply to every node that reads
        // it, over hocon/akka.conf; ExtraHocon (tests) goes over both.
        var extra = Akka.Configuration.ConfigurationFactory.ParseString(options.ExtraHocon);
        if (job.Source.Config.HasPath("akka")) extra = extra.WithFallback(job.Source.Config);   // Akka reads only akka.*
        // On the learner node the coordinator's proxy sits beside the singleton: its "no singleton found yet"
        // warning during start-up says nothing useful there. Other nodes keep it (it is how a missing learner shows).
        if (roles.Contains("learner"))
            extra = extra.WithFallback(Akka.Configuration.ConfigurationFactory.ParseString("akka.cluster.singleton-proxy.log-singleton-identification-failure = off"));
        var feedback = roles.Contains("feedback")
            ? job.Feedback ?? throw new ConfigException("--roles feedback: the job has no rlft.feedback section (see hocon/human-ppo.conf)")
            : null;
        var discovery = options.Discovery is { Method: not DiscoveryMethod.None } d ? d : null;
        if (discovery is not null && options.SeedNodes.Count > 0)
            throw new ConfigException("--seed-nodes: a node that finds its cluster through --discovery takes no seed list");
        discovery?.Check(job.Source.Config);
        // With discovery, this node's management endpoint and method go over everything; the bootstrap defaults go under
        // the job file's akka section, so a job file can tune them (stable-margin, required-contact-point-nr...).
        var akkaConfig = discovery is null
            ? extra.WithFallback(baseConfig)
            : discovery.Forced().WithFallback(extra).WithFallback(discovery.Defaults(job.Source.Config)).WithFallback(baseConfig);
        if (feedback is { Raters.Count: 0 })
            throw new ConfigException("rlft.feedback.raters: no raters configured (issue a token with 'rlft feedback-token --rater NAME')");

        // A feedback node is a web application (Kestrel serves the rater page); the others are plain hosts.
        var web = feedback is null ? null : FeedbackNode.CreateBuilder(feedback, feedback.Urls);
        IHostApplicationBuilder builder = web is not null ? web : Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(OwnHosts.Plain());
        builder.Logging.ClearProviders();
        if (options.LoggerProvider is { } provider) builder.Logging.AddProvider(provider);
        else builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.SetMinimumLevel(options.MinimumLogLevel);
        builder.Services.AddAkka(SystemName, (akka, sp) =>
        {
            akka.AddHocon(akkaConfig, HoconAddMode.Prepend)
                .AddHocon(FeedbackSerializer.Hocon, HoconAddMode.Append)
                // Akka's own level follows the node's: below it, nothing reaches a sink anyway, and Akka's console
                // fallback (used while the system stops) would print what the node's logging filters out.
                .ConfigureLoggers(l => { l.LogLevel = AkkaLevel(options.MinimumLogLevel); l.ClearLoggers(); l.AddLoggerFactory(); })
                .WithRemoting(options.Hostname, options.Port)
                .WithClustering(new ClusterOptions { Roles = roles, SeedNodes = options.SeedNodes.ToArray() });
            if (feedback is not null) akka.WithFeedback(feedback);
            if (discovery is { Method: DiscoveryMethod.Kubernetes })
                akka.AddHocon(Akka.Discovery.KubernetesApi.KubernetesDiscovery.DefaultConfiguration(), HoconAddMode.Append);
            // With discovery, the bootstrap joins (or founds) the cluster once the node has started.
            if (discovery is null && options.SeedNodes.Count == 0)
            {
                // No seeds: this node founds the cluster by joining itself (a one-member cluster for `rlft run`).
                akka.AddStartup((system, _) =>
                {
                    var cluster = Akka.Cluster.Cluster.Get(system);
                    cluster.Join(cluster.SelfAddress);
                });
            }

            // A learner group across nodes: the learner node takes the learner-replica nodes' offers here.
            var roster = roles.Contains("learner") && job.Learners > 1 && !options.LearnerReplicasInProcess ? new LearnerRoster() : null;
            if (roles.Contains("learner"))
            {
                akka.WithActors((system, registry) =>
                {
                    if (roster is not null) system.ActorOf(Props.Create(() => new LearnerRosterActor(roster)), LearnerRosterActor.Name);
                    registry.Register<JobWatcherActor>(system.ActorOf(JobWatcherActor.Props(finished, options.OnStatus), "job-watcher"));
                    // Downed by the split-brain resolver (or shut down some other way) before the job ended: say so
                    // instead of waiting forever.
                    system.WhenTerminated.ContinueWith(_ => finished.TrySetResult(new JobFinished(false, JobFinished.NodeLeft, [])), TaskScheduler.Default);
                });
                akka.WithSingleton<CoordinatorKey>("coordinator", (system, registry, _) =>
                {
                    var resume = options.Resume;
                    var recorder = resume is null ? new RunRecorder(job.RunDirectory) : RunRecorder.Resume(job.RunDirectory, resume.State);
                    return CoordinatorActor.Props(job, (ctx, interrupt) =>
                    {
                        var server = ctx.ActorOf(WeightServerActor.Props(WeightSync.WeightStreamServer.TryStart(options.Hostname, job.WeightStreamPort, system.Log), job.SyncBf16), "weights");
                        Func<ILearnerEngine> create = roster is null
                            ? () => engines.CreateLearner(job, resume?.Directory)
                            : () => ClusterLearnerGroup.Create(job, resume?.Directory, system, roster, engines, options.Hostname, options.WorkTimeout, TimeSpan.FromMinutes(10));
                        var learner = ctx.ActorOf(LearnerActor.Props(create, job, server, interrupt), "learner");
                        return (learner, server);
                    }, recorder, registry.Get<JobWatcherActor>(), options.WorkTimeout, resume?.State);
                }, new ClusterSingletonOptions { Role = "learner" });
            }
            else
            {
                akka.WithSingletonProxy<CoordinatorKey>("coordinator", new ClusterSingletonOptions { Role = "learner" });
            }

            // Worker ids name the node when its port is fixed (rollout@10.0.0.5:4054#0), so logs say which node died.
            string node = options.Port != 0 ? $"{options.Hostname}:{options.Port}" : Guid.NewGuid().ToString("N")[..8];
            akka.WithActors((system, registry) =>
            {
                system.EventStream.Subscribe(system.ActorOf(Props.Create(() => new JobEndListener(jobEnded)), "job-end-listener"), typeof(NoMoreWork));
                var coordinator = registry.Get<CoordinatorKey>();
                if (roles.Contains("reward"))
                {
                    var humans = job.UsesHumanRatings ? FeedbackRatingPort.InCluster(system, TimeSpan.FromSeconds(60)) : null;
                    system.ActorOf(RewardActor.Props(engines.CreateReward(job, 0, humans), coordinator, $"reward@{node}"), "reward");
                }
                if (roles.Contains("learner-replica"))
                    system.ActorOf(LearnerReplicaActor.Props(job, engines, options.Hostname), LearnerReplicaActor.Name);
                if (roles.Contains("client"))
                {
                    string id = $"client@{node}";
                    string work = options.ClientWorkDirectory ?? Path.Combine(Path.GetTempPath(), "rlft-client", string.Concat(id.Select(c => char.IsLetterOrDigit(c) ? c : '-')));
                    var data = options.ClientData!;
                    system.ActorOf(FederatedClientActor.Props(() => new Compute.Federated.FederatedClientEngine(job, data, id, work), coordinator), "federated-client");
                }
                if (roles.Contains("rollout"))
                {
                    var workers = Enumerable.Range(0, options.RolloutWorkers)
                        .Select(i => system.ActorOf(RolloutActor.Props(engines.CreateRollout(job, i), coordinator, $"rollout@{node}#{i}"), $"rollout-{i}"))
                        .ToList();
                    // Graceful drain: before the node leaves the cluster its workers finish the batch in hand and take
                    // no new one; what they were handed meanwhile is re-issued by the coordinator once they are gone.
                    CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeClusterShutdown, "rlft-drain-rollout", async () =>
                    {
                        try { await Task.WhenAll(workers.Select(w => w.Ask<Drained>(Drain.Instance, TimeSpan.FromSeconds(60)))); }
                        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException) { }
                        return Akka.Done.Instance;
                    });
                }
            });
        });
        IHost host;
        if (web is not null)
        {
            var app = web.Build();
            FeedbackNode.UseFeedback(app, feedback!);
            host = app;
        }
        else host = ((HostApplicationBuilder)builder).Build();
        return new RlftNode(host, finished.Task, jobEnded, discovery);
    }

    static Akka.Event.LogLevel AkkaLevel(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => Akka.Event.LogLevel.DebugLevel,
        LogLevel.Information => Akka.Event.LogLevel.InfoLevel,
        LogLevel.Warning => Akka.Event.LogLevel.WarningLevel,
        _ => Akka.Event.LogLevel.ErrorLevel,
    };

    public async Task StartAsync(CancellationToken ct = default)
    {
        await (Host is WebApplication web ? FeedbackNode.StartAsync(web, ct) : Host.StartAsync(ct));
        // The contact point first (peers probe it, and it is this node's own), then the bootstrap, which runs on in the
        // background until the node has joined or founded the cluster.
        if (_discovery is not null) _management = await ManagementEndpoint.StartAsync(System, _discovery, ct);
    }

    public async ValueTask DisposeAsync()
    {
        // Free the management port now (a worker that rejoins binds it again in the same process).
        if (_management is not null) await _management.DisposeAsync();
        try { await Host.StopAsync(TimeSpan.FromSeconds(20)); } catch (OperationCanceledException) { }
        Host.Dispose();
    }
}

/// <summary>Completes a node's <see cref="RlftNode.JobEnded"/> when one of its workers hears the job ended.</summary>
sealed class JobEndListener : ReceiveActor
{
    public JobEndListener(TaskCompletionSource<string> ended) => Receive<NoMoreWork>(m => ended.TrySetResult(m.Reason));
}
