using System.Collections.Concurrent;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Collectives;

namespace Rlft.Actors.Compute;

/// <summary>
/// <c>learners = N</c> in one process: the leader's engine (rank 0) and N − 1 replicas, each a whole learner engine
/// with its own copy of the models and a <see cref="LearnerGroup"/> over the in-process transport. Every call that
/// trains (an offline stage, an online stage's beginning, each <see cref="Train"/>) runs on all of them at once, the
/// leader on the caller's thread and each replica on a thread of its own; they meet in the group's sums, which make
/// every replica's update the one a single learner makes on the whole batch. What the coordinator sees (results,
/// progress, evaluations) and what leaves the learner (weights, checkpoints) is the leader's.
/// Replicas are made one after another from the same job, so they start from identical weights and seeds.
/// A member that fails breaks the group (the others are released from the sums): the failure is reported, and
/// later training calls are refused; the leader still evaluates, exports and checkpoints.
/// </summary>
internal sealed class LearnerGroupEngine : ILearnerEngine
{
    readonly ILearnerEngine[] _members;
    readonly LearnerGroup[] _groups;
    readonly InProcessTransport[] _transports;
    readonly ReplicaThread[] _threads;
    Exception? _broken;

    /// <param name="create">Makes the learner of one member, training with the given group (called N times, rank 0 first).</param>
    public LearnerGroupEngine(JobSpec job, Func<LearnerGroup, ILearnerEngine> create)
    {
        if (job.Learners < 2) throw new ArgumentException($"a learner group has at least two learners, not {job.Learners}", nameof(job));
        _transports = InProcessTransport.Create(job.Learners);
        _groups = _transports.Select(t => new LearnerGroup(t) { CheckEvery = job.GroupCheckEvery }).ToArray();
        var members = new List<ILearnerEngine>();
        try
        {
            foreach (var group in _groups) members.Add(create(group));
        }
        catch
        {
            foreach (var m in members) m.Dispose();
            throw;
        }
        _members = members.ToArray();
        _threads = Enumerable.Range(1, _members.Length - 1).Select(r => new ReplicaThread($"rlft-learner-{r}")).ToArray();
    }

    /// <summary>Every member's engine, by rank (the leader first): tests compare the replicas' weights.</summary>
    internal IReadOnlyList<ILearnerEngine> Members => _members;
    public int Size => _members.Length;
    /// <summary>The time member <paramref name="rank"/> has spent in the group's sums so far.</summary>
    public TimeSpan CommunicationTime(int rank) => _groups[rank].CommunicationTime;
    ILearnerEngine Leader => _members[0];

    public long PolicyVersion => Leader.PolicyVersion;
    public long RewardModelVersion => Leader.RewardModelVersion;
    public bool ExportsAdapterOnly => Leader.ExportsAdapterOnly;
    public long AdapterBaseVersion => Leader.AdapterBaseVersion;

    public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken cancellationToken) =>
        OnAll(m => m.RunOfflineStage(stage, ReferenceEquals(m, Leader) ? progress : _ => { }, cancellationToken));

    public void BeginOnlineStage(StageSpec stage, bool resume = false) => OnAll(m => { m.BeginOnlineStage(stage, resume); return 0; });

    public PolicyUpdated Train(StageSpec stage, TrainOn experience)
    {
        var before = _groups[0].CommunicationTime;
        var updated = OnAll(m => m.Train(stage, experience));
        // The leader's time in the sums, waiting for the slowest member included.
        updated.Metrics["timing/all_reduce"] = (_groups[0].CommunicationTime - before).TotalSeconds;
        updated.Metrics["learners/size"] = Size;
        return updated;
    }

    public byte[] ExportWeights(WeightKind kind) => Leader.ExportWeights(kind);
    public LocalWeights? ShareWeights(WeightKind kind) => Leader.ShareWeights(kind);
    public byte[] ExportAdapterBase() => Leader.ExportAdapterBase();
    public LocalWeights? ShareAdapterBase() => Leader.ShareAdapterBase();
    public EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts) => Leader.Evaluate(stage, label, prompts);
    public void SaveCheckpoint(string directory) => Leader.SaveCheckpoint(directory);

    /// <summary>
    /// Runs <paramref name="work"/> on every member at once (replicas on their threads, the leader here) and returns the
    /// leader's result once all are done. The first member to fail closes the group's links, so that no member waits
    /// in a sum for it; that failure is thrown, naming the member.
    /// </summary>
    T OnAll<T>(Func<ILearnerEngine, T> work)
    {
        if (_broken is { } broken) throw new InvalidOperationException($"the learner group stopped after a member failed: {broken.Message}", broken);
        Exception? first = null;
        int firstRank = -1;
        void Fail(int rank, Exception e)
        {
            if (Interlocked.CompareExchange(ref first, e, null) is not null) return;
            firstRank = rank;
            foreach (var t in _transports) t.Dispose();
        }
        using var done = new CountdownEvent(_threads.Length);
        for (int r = 1; r < _members.Length; r++)
        {
            int rank = r;
            _threads[rank - 1].Post(() =>
            {
                try { work(_members[rank]); }
                catch (Exception e) { Fail(rank, e); }
                finally { done.Signal(); }
            });
        }
        T result = default!;
        try { result = work(Leader); }
        catch (Exception e) { Fail(0, e); }
        done.Wait();
        if (first is null) return result;
        _broken = first;
        if (firstRank == 0) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        throw new InvalidOperationException($"learner {firstRank} of the group of {Size} failed: {first.Message}", first);
    }

    public void Dispose()
    {
        foreach (var t in _threads) t.Dispose();
        foreach (var m in _members) m.Dispose();
        foreach (var t in _transports) t.Dispose();
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
