using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Collectives;

namespace Rlft.Actors.Runtime;

/// <summary>
/// The leader's side of a learner group across nodes (<c>rlft node</c> with <c>learners = N</c>): it waits for N − 1
/// learner-replica nodes to offer themselves (<see cref="LearnerRoster"/>), refuses one that read another job, connects
/// the bulk channel (TCP, one link per pair of members, beside Akka), builds its own learner, has every replica build
/// its, and compares the weights all start from. Training calls then go to the replicas as the messages the learner
/// actor takes (<see cref="RunOfflineStage"/>, <see cref="BeginOnline"/>, <see cref="TrainOn"/>) while the leader
/// trains its share; gradients meet in the group's sums over the bulk channel, never in actor messages.
/// </summary>
internal static class ClusterLearnerGroup
{
    /// <summary>
    /// Runs on the learner actor's thread as it starts. <paramref name="waitForReplicas"/> bounds the wait for replicas to
    /// offer themselves; connecting and building each take at most <paramref name="build"/>.
    /// </summary>
    public static ILearnerEngine Create(JobSpec job, string? resumeFrom, ActorSystem system, LearnerRoster roster, IEngineFactory engines, string hostname,
        TimeSpan waitForReplicas, TimeSpan build)
    {
        var offers = roster.WaitFor(job.Learners - 1, waitForReplicas);
        var context = new FormContext(job, system, roster, engines, hostname, build);
        return new ElasticLearnerGroup(context, Form(context, resumeFrom, offers));
    }

    /// <summary>What forming a group (again) needs besides its members.</summary>
    internal sealed record FormContext(JobSpec Job, ActorSystem System, LearnerRoster Roster, IEngineFactory Engines, string Hostname, TimeSpan Build);

    /// <summary>
    /// Forms a group of the leader and <paramref name="offers"/> (ranks in that order): connects the bulk channel, builds the
    /// leader's learner and every replica's from <paramref name="resumeFrom"/> (when set) and compares their weights.
    /// </summary>
    internal static LearnerGroupEngine Form(FormContext c, string? resumeFrom, IReadOnlyList<LearnerRoster.Offer> offers)
    {
        var (job, build) = (c.Job, c.Build);
        int size = offers.Count + 1;
        string fingerprint = LearnerRoster.Fingerprint(job);
        foreach (var o in offers)
            if (o.Ready.Fingerprint != fingerprint)
                throw new InvalidOperationException($"the learner replica on {o.Ready.Node} read another job than the leader (its rlft.job model, stages, seed, lora, precision or learners differ): start every learner node with the same job file and --set overrides");
        var listener = new TcpListener(IPAddress.Any, 0);
        listener.Start();
        TcpTransport transport;
        try
        {
            var endpoints = new[] { $"{c.Hostname}:{((IPEndPoint)listener.LocalEndpoint).Port}" }.Concat(offers.Select(o => o.Ready.Endpoint)).ToArray();
            var resolved = endpoints.Select(Resolve).ToList();
            var connecting = TcpTransport.ConnectAsync(0, resolved, listener, build);
            var answers = offers.Select((o, i) => o.Replica.Ask<object>(new FormLearnerGroup(i + 1, size, endpoints), build)).ToArray();
            transport = connecting.GetAwaiter().GetResult();
            for (int i = 0; i < answers.Length; i++)
            {
                object answer;
                try { answer = answers[i].GetAwaiter().GetResult(); }
                catch (AskTimeoutException) { answer = new LearnerReplicaDone(i + 1, $"no answer within {build.TotalSeconds:0} s"); }
                if (answer is LearnerReplicaDone { Error: { } error })
                {
                    transport.Dispose();
                    throw new InvalidOperationException($"the learner replica on {offers[i].Ready.Node} could not join the group: {error}");
                }
            }
        }
        finally { listener.Stop(); }

        ILearnerEngine leader;
        var group = new LearnerGroup(transport) { CheckEvery = job.GroupCheckEvery };
        try { leader = c.Engines.CreateGroupMember(job, resumeFrom, group); }
        catch
        {
            transport.Dispose();
            foreach (var o in offers) o.Replica.Tell(new NoMoreWork("the learner group's leader could not load its models"));
            throw;
        }
        var replicas = offers.Select((o, i) => (IGroupReplica)new RemoteReplica(c.System, o.Replica, i + 1, o.Ready.Node)).ToList();
        var engine = new LearnerGroupEngine(leader, group, transport, replicas);
        try { engine.CheckStart(resumeFrom); }
        catch
        {
            engine.Dispose();
            throw;
        }
        c.Roster.Members = offers.Select(o => o.Replica).ToList();
        return engine;
    }

    /// <summary>host:port (a name or an address) as an IPv4 endpoint.</summary>
    internal static IPEndPoint Resolve(string endpoint)
    {
        int colon = endpoint.LastIndexOf(':');
        string host = endpoint[..colon];
        int port = int.Parse(endpoint[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        var address = IPAddress.TryParse(host, out var a) ? a
            : Dns.GetHostAddresses(host).FirstOrDefault(x => x.AddressFamily == AddressFamily.InterNetwork) ?? throw new InvalidOperationException($"learner group: cannot resolve {host}");
        return new IPEndPoint(address, port);
    }

    /// <summary>
    /// A replica on a learner-replica node: each call is the message its <see cref="LearnerReplicaActor"/> takes, answered
    /// with <see cref="LearnerReplicaDone"/>. A replica whose node leaves the cluster fails the call it was in.
    /// </summary>
    sealed class RemoteReplica : IGroupReplica
    {
        readonly IActorRef _replica;
        readonly int _rank;
        readonly string _node;
        readonly CancellationTokenSource _lost = new();
        readonly IActorRef _watch;

        public RemoteReplica(ActorSystem system, IActorRef replica, int rank, string node)
        {
            (_replica, _rank, _node) = (replica, rank, node);
            _watch = system.ActorOf(Props.Create(() => new Watch(replica, _lost)));
        }

        /// <summary>
        /// A live replica answers once it reaches its next sum after the leader closed the links (at once when it is in
        /// one, after its forward and backward when it is not); one whose process died never answers.
        /// </summary>
        public TimeSpan WaitAfterFailure => TimeSpan.FromSeconds(5);

        public async Task Run(ReplicaCall call)
        {
            object message = call switch
            {
                StartCall s => new BuildLearnerReplica(s.ResumeFrom),
                OfflineCall o => new RunOfflineStage(o.Stage.Index),
                BeginCall b => new BeginOnline(b.Stage.Index, b.Resume),
                TrainCall t => t.Experience,
                _ => throw new ArgumentOutOfRangeException(nameof(call), call, "not a learner group call"),
            };
            LearnerReplicaDone done;
            try { done = await _replica.Ask<LearnerReplicaDone>(message, Timeout.InfiniteTimeSpan, _lost.Token); }
            catch (OperationCanceledException) { throw new ReplicaLostException($"the learner replica on {_node} left the cluster"); }
            if (done.Error is { } error) throw new InvalidOperationException(error);
        }

        public void Dispose()
        {
            _replica.Tell(new NoMoreWork("the job ended"));
            Release();
        }

        public void Release() => _watch.Tell(PoisonPill.Instance);

        /// <summary>Watches the replica's actor: its node leaving the cluster ends the wait for its answer.</summary>
        sealed class Watch : ReceiveActor
        {
            public Watch(IActorRef replica, CancellationTokenSource lost)
            {
                Context.Watch(replica);
                Receive<Terminated>(_ => lost.Cancel());
            }
        }
    }
}

/// <summary>
/// The learner-replica nodes that offered themselves to this learner node (through <see cref="LearnerRosterActor"/>),
/// in the order they did; the leader takes the first N − 1.
/// </summary>
internal sealed class LearnerRoster
{
    public sealed record Offer(LearnerReplicaReady Ready, IActorRef Replica);

    readonly List<Offer> _offers = [];
    IReadOnlyList<IActorRef> _members = [];

    /// <summary>The replicas in the leader's current group: their offers (late ones, sent before they were formed) are ignored.</summary>
    public IReadOnlyList<IActorRef> Members
    {
        get { lock (_offers) return _members; }
        set { lock (_offers) { _members = value; _offers.RemoveAll(o => value.Contains(o.Replica)); } }
    }

    /// <summary>Offers waiting to be taken.</summary>
    public int Pending { get { lock (_offers) return _offers.Count; } }

    public void Add(LearnerReplicaReady ready, IActorRef replica)
    {
        lock (_offers)
        {
            if (_members.Contains(replica)) return;
            // A replica that left a group offers again from a new endpoint: the newest offer counts.
            _offers.RemoveAll(o => o.Replica.Equals(replica));
            _offers.Add(new Offer(ready, replica));
            Monitor.PulseAll(_offers);
        }
    }

    /// <summary>Takes the first <paramref name="count"/> offers, waiting up to <paramref name="timeout"/> for them; refuses with what came.</summary>
    public IReadOnlyList<Offer> WaitFor(int count, TimeSpan timeout)
    {
        var taken = TakeUpTo(count, count, timeout);
        if (taken.Count < count)
        {
            lock (_offers) _offers.InsertRange(0, taken);
            throw new TimeoutException($"rlft.job.learners = {count + 1}: {taken.Count} of the {count} learner-replica node(s) the group needs joined within {timeout.TotalSeconds:0} s "
                + "(start each with: rlft node JOB --roles learner-replica --seed-nodes LEARNER_ADDRESS)");
        }
        return taken;
    }

    /// <summary>Waits up to <paramref name="timeout"/> for <paramref name="expected"/> offers, then takes what there is, at most <paramref name="max"/>.</summary>
    public IReadOnlyList<Offer> TakeUpTo(int max, int expected, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_offers)
        {
            while (_offers.Count < expected)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) break;
                Monitor.Wait(_offers, left);
            }
            var taken = _offers.Take(max).ToList();
            _offers.RemoveRange(0, taken.Count);
            return taken;
        }
    }

    /// <summary>What every member of a group must agree on: the job's model, stages, seed, adapters, precision and group size.</summary>
    public static string Fingerprint(JobSpec job)
    {
        var c = job.Source.Config;
        var parts = new[] { "model", "stages", "seed", "lora", "precision", "learners", "group-check-every", "chat-template", "gradient-checkpointing" }
            .Select(k => $"{k}={(c.HasPath($"{JobSpecReader.Root}.{k}") ? c.GetValue($"{JobSpecReader.Root}.{k}").ToString() : "")}");
        return Convert.ToHexString(System.IO.Hashing.XxHash3.Hash(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", parts))));
    }
}

/// <summary>On a learner node with a group across nodes (/user/learner-roster): takes the replicas' offers.</summary>
internal sealed class LearnerRosterActor : ReceiveActor
{
    public const string Name = "learner-roster";

    public LearnerRosterActor(LearnerRoster roster) => Receive<LearnerReplicaReady>(m => roster.Add(m, Sender));
}
