using System.Collections.Concurrent;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Collectives;

namespace Rlft.Actors.Compute;

/// <summary>
/// <c>learners = N</c>: the leader's engine (rank 0) and N − 1 replicas, each a whole learner engine with its own copy
/// of the models and a <see cref="LearnerGroup"/>. The replicas live in this process (threads over the in-process
/// transport: <c>rlft run</c>) or on learner-replica nodes (over TCP: <c>rlft node</c>, see
/// <see cref="Runtime.ClusterLearnerGroup"/>). Every call that trains (an offline stage, an online stage's beginning,
/// each <see cref="Train"/>) runs on all of them at once, the leader on the caller's thread; they meet in the group's
/// sums, which make every replica's update the one a single learner makes on the whole batch. What the coordinator
/// sees (results, progress, evaluations) and what leaves the learner (weights, checkpoints) is the leader's.
/// A member that fails breaks the group (the links are closed, so no member waits in a sum for it): the failure is
/// reported, and later training calls are refused; the leader still evaluates, exports and checkpoints.
/// </summary>
internal sealed class LearnerGroupEngine : ILearnerEngine
{

    readonly ILearnerEngine _leader;
    readonly IReadOnlyList<IGroupReplica> _replicas;
    readonly LearnerGroup[] _localGroups;
    readonly Action _closeLinks;
    readonly IDisposable[] _links;
    Exception? _broken;
    bool[] _answered = [];

    /// <summary>N members in this process over the in-process transport.</summary>
    /// <param name="create">Makes the learner of one member, training with the given group (called N times, rank 0 first).</param>
    public LearnerGroupEngine(JobSpec job, Func<LearnerGroup, ILearnerEngine> create)
    {
        if (job.Learners < 2) throw new ArgumentException($"a learner group has at least two learners, not {job.Learners}", nameof(job));
        var transports = InProcessTransport.Create(job.Learners);
        _localGroups = transports.Select(t => new LearnerGroup(t) { CheckEvery = job.GroupCheckEvery }).ToArray();
        var members = new List<ILearnerEngine>();
        try
        {
            foreach (var group in _localGroups) members.Add(create(group));
        }
        catch
        {
            foreach (var m in members) m.Dispose();
            throw;
        }
        _leader = members[0];
        _replicas = members.Skip(1).Select((m, i) => (IGroupReplica)new LocalReplica(m, $"rlft-learner-{i + 1}")).ToList();
        _links = transports;
        _closeLinks = () => { foreach (var t in transports) t.Dispose(); };
        Members = members;
        // Replicas are made from the same job and seed: the group checks that their weights are the same before the first step.
        try { OnAll(m => { m.CheckGroupStart(); return 0; }, new StartCall(null)); }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// The leader here and replicas elsewhere: <paramref name="leaderLinks"/> is the leader's end of the bulk channel, which
    /// a failure closes so that every member leaves its sums. Call <see cref="CheckStart"/> before the first step.
    /// </summary>
    public LearnerGroupEngine(ILearnerEngine leader, LearnerGroup leaderGroup, IDisposable leaderLinks, IReadOnlyList<IGroupReplica> replicas)
    {
        (_leader, _replicas, _localGroups, _links) = (leader, replicas, [leaderGroup], [leaderLinks]);
        _closeLinks = leaderLinks.Dispose;
        Members = [leader];
    }

    /// <summary>
    /// Every replica builds its models (remote ones from <paramref name="resumeFrom"/>) and the group compares the weights
    /// all start from; a replica that cannot load or holds other weights fails the group here, before any step.
    /// </summary>
    public void CheckStart(string? resumeFrom) => OnAll(m => { m.CheckGroupStart(); return 0; }, new StartCall(resumeFrom));

    /// <summary>The engines in this process, by rank (the leader first): tests compare the replicas' weights.</summary>
    internal IReadOnlyList<ILearnerEngine> Members { get; }
    public int Size => _replicas.Count + 1;
    /// <summary>The time member <paramref name="rank"/> (one in this process) has spent in the group's sums so far.</summary>
    public TimeSpan CommunicationTime(int rank) => _localGroups[rank].CommunicationTime;

    public long PolicyVersion => _leader.PolicyVersion;
    public long RewardModelVersion => _leader.RewardModelVersion;
    public bool ExportsAdapterOnly => _leader.ExportsAdapterOnly;
    public long AdapterBaseVersion => _leader.AdapterBaseVersion;

    public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken cancellationToken) =>
        OnAll(m => m.RunOfflineStage(stage, progress, cancellationToken), new OfflineCall(stage, cancellationToken));

    public void BeginOnlineStage(StageSpec stage, bool resume = false) => OnAll(m => { m.BeginOnlineStage(stage, resume); return 0; }, new BeginCall(stage, resume));

    public PolicyUpdated Train(StageSpec stage, TrainOn experience)
    {
        var before = _localGroups[0].CommunicationTime;
        var updated = OnAll(m => m.Train(stage, experience), new TrainCall(stage, experience));
        // The leader's time in the sums, waiting for the slowest member included.
        updated.Metrics["timing/all_reduce"] = (_localGroups[0].CommunicationTime - before).TotalSeconds;
        updated.Metrics["learners/size"] = Size;
        return updated;
    }

    public byte[] ExportWeights(WeightKind kind) => _leader.ExportWeights(kind);
    public LocalWeights? ShareWeights(WeightKind kind) => _leader.ShareWeights(kind);
    public byte[] ExportAdapterBase() => _leader.ExportAdapterBase();
    public LocalWeights? ShareAdapterBase() => _leader.ShareAdapterBase();
    public EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts) => _leader.Evaluate(stage, label, prompts);
    public void SaveCheckpoint(string directory) => _leader.SaveCheckpoint(directory);

    /// <summary>
    /// Runs <paramref name="work"/> on the leader here and <paramref name="call"/> on every replica at once, and returns the
    /// leader's result once all are done. The first member to fail closes the group's links, so that no member waits in a
    /// sum for it; that failure is thrown, naming the member.
    /// </summary>
    T OnAll<T>(Func<ILearnerEngine, T> work, ReplicaCall call)
    {
        if (_broken is { } broken) throw new InvalidOperationException($"the learner group stopped after a member failed: {broken.Message}", broken);
        Exception? first = null;
        int firstRank = -1;
        void Fail(int rank, Exception e)
        {
            if (Interlocked.CompareExchange(ref first, e, null) is not null) return;
            firstRank = rank;
            _closeLinks();
        }
        var answered = _answered = new bool[_replicas.Count];
        var replicas = _replicas.Select((r, i) => r.Run(call).ContinueWith(t =>
        {
            answered[i] = !t.IsCanceled && t.Exception?.InnerException is not ReplicaLostException;
            if (t.Exception is { } e) Fail(i + 1, e.InnerException ?? e);
            else if (t.IsCanceled) Fail(i + 1, new OperationCanceledException($"learner {i + 1} of the group of {Size} did not finish its work"));
        }, TaskScheduler.Default)).ToArray();
        T result = default!;
        try { result = work(_leader); }
        catch (Exception e) { Fail(0, e); }
        // Once the group failed, a replica in another process is waited for a moment only (a lost process never answers,
        // and a live one leaves its next sum at once); a replica in this process always, as its engine is disposed here.
        for (int i = 0; i < replicas.Length; i++)
            if (first is null) replicas[i].Wait();
            else replicas[i].Wait(_replicas[i].WaitAfterFailure);
        if (first is null) return result;
        _broken = first;
        if (firstRank == 0) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        throw new InvalidOperationException($"learner {firstRank} of the group of {Size} failed: {first.Message}", first);
    }

    /// <summary>
    /// After a failed call: the replicas (by rank − 1) that answered it, failed or not; one that did not answer in time
    /// (its process died, or its node left the cluster) is lost.
    /// </summary>
    public IReadOnlyList<bool> Answered => _answered;

    /// <summary>
    /// Gives the group up without ending the replicas' part in the job (an elastic group forms a new one with them): the
    /// links close and the replicas are let go; the leader's engine is not disposed (the caller keeps it).
    /// </summary>
    public void Abandon()
    {
        _broken ??= new InvalidOperationException("the learner group was re-formed");
        foreach (var l in _links) l.Dispose();
        foreach (var r in _replicas) r.Release();
    }

    public void Dispose()
    {
        foreach (var r in _replicas) r.Dispose();
        _leader.Dispose();
        foreach (var l in _links) l.Dispose();
    }

    /// <summary>A replica in this process: its engine, called on a thread of its own.</summary>
    sealed class LocalReplica(ILearnerEngine engine, string thread) : IGroupReplica
    {
        readonly ReplicaThread _thread = new(thread);

        public Task Run(ReplicaCall call)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _thread.Post(() =>
            {
                try
                {
                    call.Apply(engine);
                    done.SetResult();
                }
                catch (Exception e) { done.SetException(e); }
            });
            return done.Task;
        }

        public void Dispose()
        {
            _thread.Dispose();
            engine.Dispose();
        }
    }

    /// <summary>A replica's own thread: runs the work posted to it, one item after another, until disposed.</summary>
    sealed class ReplicaThread : IDisposable
    {
        readonly BlockingCollection<Action> _work = new();
        readonly Thread _thread;

        public ReplicaThread(string name)
        {
            // The stack of a training step (deep model forward/backward through TorchSharp) as the group tests use.
            _thread = new Thread(() => { foreach (var item in _work.GetConsumingEnumerable()) item(); }, 64 << 20) { IsBackground = true, Name = name };
            _thread.Start();
        }

        public void Post(Action work) => _work.Add(work);

        public void Dispose()
        {
            _work.CompleteAdding();
            _thread.Join();
            _work.Dispose();
        }
    }
}

/// <summary>A member of a learner group other than the leader, in this process or on a learner-replica node.</summary>
internal interface IGroupReplica : IDisposable
{
    /// <summary>Starts <paramref name="call"/> on the replica; the task ends when the replica has done it, faulted with its failure.</summary>
    Task Run(ReplicaCall call);
    /// <summary>How long the group waits for this replica's answer once another member failed (infinite: until it answers).</summary>
    TimeSpan WaitAfterFailure => Timeout.InfiniteTimeSpan;
    /// <summary>Lets the replica go without ending its part in the job (its group is being re-formed).</summary>
    void Release() => Dispose();
}

/// <summary>A replica whose process died or whose node left the cluster: it will not answer.</summary>
internal sealed class ReplicaLostException(string message) : Exception(message);

/// <summary>What the leader asks of every replica: the call it makes on its own engine.</summary>
internal abstract record ReplicaCall
{
    /// <summary>Makes the call on an engine in this process.</summary>
    public abstract void Apply(ILearnerEngine engine);
}

/// <summary>The group starts: replicas elsewhere build their models (from a checkpoint, when resuming); all compare their weights.</summary>
internal sealed record StartCall(string? ResumeFrom) : ReplicaCall
{
    public override void Apply(ILearnerEngine engine) => engine.CheckGroupStart();
}

internal sealed record OfflineCall(StageSpec Stage, CancellationToken Cancellation) : ReplicaCall
{
    public override void Apply(ILearnerEngine engine) => engine.RunOfflineStage(Stage, _ => { }, Cancellation);
}

internal sealed record BeginCall(StageSpec Stage, bool Resume) : ReplicaCall
{
    public override void Apply(ILearnerEngine engine) => engine.BeginOnlineStage(Stage, Resume);
}

internal sealed record TrainCall(StageSpec Stage, TrainOn Experience) : ReplicaCall
{
    public override void Apply(ILearnerEngine engine) => engine.Train(Stage, Experience);
}
