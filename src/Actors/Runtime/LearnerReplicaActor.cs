using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Collectives;

namespace Rlft.Actors.Runtime;

/// <summary>
/// A learner-replica node's member of the learner group (<c>rlft node --roles learner-replica</c>). It listens for the
/// bulk channel, offers itself to every learner node's roster until the leader forms the group, then connects, builds
/// its learner (on its own pinned thread, as the learner actor does) and trains its share of every call the leader
/// makes, answering each with <see cref="LearnerReplicaDone"/>. It publishes <see cref="NoMoreWork"/> (the node leaves)
/// when the leader says the job ended or when a call fails (the leader has failed the job).
/// </summary>
internal sealed class LearnerReplicaActor : ReceiveActor, IWithTimers
{
    public const string Name = "learner-replica";
    readonly JobSpec _job;
    readonly IEngineFactory _engines;
    readonly string _hostname;
    TcpListener _listener = null!;
    LearnerReplicaReady _ready = null!;
    readonly HashSet<Address> _learners = [];
    readonly ILoggingAdapter _log = Context.GetLogger();
    TcpTransport? _transport;
    LearnerGroup? _group;
    ILearnerEngine? _engine;
    int _rank = -1;
    bool _formed;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(JobSpec job, IEngineFactory engines, string hostname) =>
        Akka.Actor.Props.Create(() => new LearnerReplicaActor(job, engines, hostname)).WithDispatcher("rlft.compute-dispatcher");

    public LearnerReplicaActor(JobSpec job, IEngineFactory engines, string hostname)
    {
        (_job, _engines, _hostname) = (job, engines, hostname);
        Listen();

        Receive<ClusterEvent.CurrentClusterState>(s => { foreach (var m in s.Members) Track(m); Offer(); });
        Receive<ClusterEvent.MemberUp>(m => { Track(m.Member); Offer(); });
        Receive<ClusterEvent.MemberRemoved>(m =>
        {
            // The learner node (the group's leader) is gone: this node's part in the job is over.
            if (_learners.Remove(m.Member.Address) && _learners.Count == 0 && _formed)
                Context.System.EventStream.Publish(new NoMoreWork("the learner node left the cluster"));
        });
        Receive<LeaveLearnerGroup>(_ => { if (_rank >= 0) Reset(); });
        Receive<OfferAgain>(_ => Offer());
        Receive<FormLearnerGroup>(Form);
        Receive<BuildLearnerReplica>(m => Answer(() =>
        {
            _engine ??= _engines.CreateGroupMember(_job, m.ResumeFrom, _group ?? throw new InvalidOperationException("built before the group formed"));
            _engine.CheckGroupStart();
        }));
        Receive<RunOfflineStage>(m => Answer(() => Engine.RunOfflineStage(_job.Stages[m.Stage], _ => { }, CancellationToken.None)));
        Receive<BeginOnline>(m => Answer(() => Engine.BeginOnlineStage(_job.Stages[m.Stage], m.Resume)));
        Receive<TrainOn>(m => Answer(() => Engine.Train(_job.Stages[m.Stage], m)));
        Receive<NoMoreWork>(m => Context.System.EventStream.Publish(m));   // the node learns the job ended
    }

    ILearnerEngine Engine => _engine ?? throw new InvalidOperationException("a training call before the replica was built");

    protected override void PreStart()
    {
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved));
        Timers.StartPeriodicTimer("offer", OfferAgain.Instance, TimeSpan.FromSeconds(1));
    }

    void Track(Member m)
    {
        if (m.Status == MemberStatus.Up && m.HasRole("learner")) _learners.Add(m.Address);
    }

    /// <summary>Offers this replica to every learner node until a leader takes it (the roster ignores repeats).</summary>
    void Offer()
    {
        if (_rank >= 0) return;
        foreach (var a in _learners) Context.ActorSelection($"{a}/user/{LearnerRosterActor.Name}").Tell(_ready);
    }

    void Form(FormLearnerGroup m)
    {
        if (_rank >= 0)
        {
            Sender.Tell(new LearnerReplicaDone(m.Rank, $"this replica is already member {_rank} of a group"));
            return;
        }
        try
        {
            var endpoints = m.Endpoints.Select(ClusterLearnerGroup.Resolve).ToList();
            _transport = TcpTransport.ConnectAsync(m.Rank, endpoints, _listener, TimeSpan.FromMinutes(2)).GetAwaiter().GetResult();
            _group = new LearnerGroup(_transport) { CheckEvery = _job.GroupCheckEvery };
            (_rank, _formed) = (m.Rank, true);
            Timers.Cancel("offer");
            _listener.Stop();
            Sender.Tell(new LearnerReplicaConnected(m.Rank));
        }
        catch (Exception e)
        {
            _log.Warning("learner replica: could not connect to the group: {0}", e.Message);
            Sender.Tell(new LearnerReplicaDone(m.Rank, e.Message));
        }
    }

    /// <summary>Runs a call of the leader's and answers it; a failure ends this node's part in the job.</summary>
    void Answer(Action work)
    {
        try
        {
            work();
            Sender.Tell(new LearnerReplicaDone(_rank, null));
        }
        catch (Exception e)
        {
            _log.Warning("learner replica {0}: {1}", _rank, e.Message);
            Sender.Tell(new LearnerReplicaDone(_rank, e.Message));
            // The group is over: the leader fails the job (then says so), or forms a new group, to which this replica offers itself.
            Reset();
        }
    }

    /// <summary>A new bulk-channel listener and the offer that names it.</summary>
    void Listen()
    {
        _listener = new TcpListener(IPAddress.Any, 0);
        _listener.Start();
        _ready = new LearnerReplicaReady($"{_hostname}:{((IPEndPoint)_listener.LocalEndpoint).Port}", LearnerRoster.Fingerprint(_job), Cluster.Get(Context.System).SelfAddress.ToString());
    }

    /// <summary>Leaves the group: the learner and the links go, and the replica offers itself again from a new endpoint.</summary>
    void Reset()
    {
        _engine?.Dispose();
        _engine = null;
        _transport?.Dispose();
        _transport = null;
        _group = null;
        _rank = -1;
        _listener.Stop();
        Listen();
        Timers.StartPeriodicTimer("offer", OfferAgain.Instance, TimeSpan.FromSeconds(1));
        Offer();
    }

    protected override void PostStop()
    {
        Cluster.Get(Context.System).Unsubscribe(Self);
        _listener.Stop();
        _engine?.Dispose();
        _transport?.Dispose();
    }

    sealed class OfferAgain
    {
        public static readonly OfferAgain Instance = new();
    }
}
