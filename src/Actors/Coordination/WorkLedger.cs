namespace Rlft.Actors.Coordination;

/// <summary>A unit of rollout work: one batch of prompts to complete with a given policy version.</summary>
internal sealed record WorkItem<T>(long BatchId, T Payload);

/// <summary>
/// The coordinator's book of rollout work (no actors inside, so it is tested directly).
/// Workers pull: <see cref="Assign"/> hands the oldest pending item to an idle worker and records it as
/// in flight with a deadline. A lost or timed-out worker's items go back to the front of the queue.
/// Each batch id completes at most once: a late answer for a batch that another worker already
/// finished is a duplicate and is ignored, so the learner never sees a batch twice.
/// </summary>
internal sealed class WorkLedger<T>
{
    readonly LinkedList<WorkItem<T>> _pending = new();
    readonly Dictionary<long, (string Worker, WorkItem<T> Item, DateTime Deadline)> _inFlight = new();
    readonly HashSet<long> _completed = new();
    readonly Dictionary<string, long> _perWorker = new();

    public int Pending => _pending.Count;
    public int InFlight => _inFlight.Count;
    public long Completed => _completed.Count;
    public long Reissued { get; private set; }
    public long Duplicates { get; private set; }
    public IReadOnlyDictionary<string, long> CompletedPerWorker => _perWorker;

    public void Enqueue(WorkItem<T> item)
    {
        if (_completed.Contains(item.BatchId) || _inFlight.ContainsKey(item.BatchId) || _pending.Any(p => p.BatchId == item.BatchId))
            throw new InvalidOperationException($"batch {item.BatchId} is already known to the ledger");
        _pending.AddLast(item);
    }

    /// <summary>Hands the oldest pending item to <paramref name="worker"/>, or null when nothing waits.</summary>
    public WorkItem<T>? Assign(string worker, DateTime now, TimeSpan timeout)
    {
        if (_pending.First is not { } first) return null;
        _pending.RemoveFirst();
        _inFlight[first.Value.BatchId] = (worker, first.Value, now + timeout);
        return first.Value;
    }

    /// <summary>Records a finished batch; false when it is unknown or already completed (a duplicate).</summary>
    public bool Complete(long batchId, string worker)
    {
        if (_completed.Contains(batchId)) { Duplicates++; return false; }
        bool known = _inFlight.Remove(batchId);
        // A re-issued batch may still be pending when the original worker's late answer arrives.
        var pendingNode = _pending.First;
        while (pendingNode is not null && pendingNode.Value.BatchId != batchId) pendingNode = pendingNode.Next;
        if (pendingNode is not null) { _pending.Remove(pendingNode); known = true; }
        if (!known) { Duplicates++; return false; }
        _completed.Add(batchId);
        _perWorker[worker] = _perWorker.GetValueOrDefault(worker) + 1;
        return true;
    }

    /// <summary>Puts a failed batch back at the front of the queue (if still in flight).</summary>
    public bool Fail(long batchId)
    {
        if (!_inFlight.Remove(batchId, out var entry)) return false;
        _pending.AddFirst(entry.Item);
        Reissued++;
        return true;
    }

    /// <summary>Re-queues everything in flight on <paramref name="worker"/>; returns the batch ids.</summary>
    public IReadOnlyList<long> WorkerLost(string worker) =>
        Requeue(_inFlight.Where(e => e.Value.Worker == worker).Select(e => e.Key).ToList());

    /// <summary>Re-queues in-flight work whose deadline has passed.</summary>
    public IReadOnlyList<long> Expire(DateTime now) =>
        Requeue(_inFlight.Where(e => e.Value.Deadline <= now).Select(e => e.Key).ToList());

    /// <summary>Drops every pending item (e.g. at the end of a stage); in-flight answers become duplicates.</summary>
    public void Clear()
    {
        _pending.Clear();
        foreach (var id in _inFlight.Keys) _completed.Add(id);
        _inFlight.Clear();
    }

    /// <summary>Batch ids held by each worker now.</summary>
    public Dictionary<string, long[]> InFlightPerWorker() =>
        _inFlight.GroupBy(kv => kv.Value.Worker).ToDictionary(g => g.Key, g => g.Select(kv => kv.Key).Order().ToArray());

    public bool IsInFlightOn(long batchId, string worker) => _inFlight.TryGetValue(batchId, out var e) && e.Worker == worker;

    IReadOnlyList<long> Requeue(List<long> ids)
    {
        // Oldest batch first at the front of the queue.
        foreach (var id in ids.OrderByDescending(i => i))
        {
            _pending.AddFirst(_inFlight[id].Item);
            _inFlight.Remove(id);
            Reissued++;
        }
        return ids;
    }
}
