using static TorchSharp.torch;

namespace Rlft.Policy.Collectives;

/// <summary>
/// What a trainer's step needs to know about the data-parallel group it belongs to: its rank, the group's size,
/// which rows of a batch are its share, and sums over the group (of gradients, counts and statistics). Every member
/// sees the whole batch (token ids are cheap) and computes only its share; the sums make the update the one a single
/// learner would make on the whole batch. <see cref="Solo"/> is a group of one: every sum is the identity.
/// The calls block: a trainer steps on its own thread, and every member makes the same calls in the same order.
/// </summary>
internal sealed class LearnerGroup
{
    readonly ICollectiveTransport? _transport;
    long _communicationTicks;

    /// <summary>One learner alone (today's behaviour).</summary>
    public static readonly LearnerGroup Solo = new(null);

    public LearnerGroup(ICollectiveTransport? transport) => _transport = transport;

    public int Rank => _transport?.Rank ?? 0;
    public int Size => _transport?.Size ?? 1;
    public bool IsSolo => Size == 1;
    /// <summary>The leader adds what must count once for the whole group (a penalty on the shared weights).</summary>
    public bool IsLeader => Rank == 0;
    /// <summary>Wall time spent in this member's sums so far (waiting for the slowest member included): a step's <c>timing/all_reduce</c>.</summary>
    public TimeSpan CommunicationTime => TimeSpan.FromTicks(Interlocked.Read(ref _communicationTicks));

    /// <summary>
    /// Every how many optimizer steps the members compare a hash of their trainable weights
    /// (<c>rlft.job.group-check-every</c>; 0 never): replicas that drifted apart stop the group with a message.
    /// </summary>
    public int CheckEvery { get; init; }

    /// <summary>Replaces each tensor by its sum over the group (bitwise the same on every member).</summary>
    public void Sum(IReadOnlyList<Tensor> tensors)
    {
        if (_transport is not { Size: > 1 } t) return;
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        AllReduce.SumAsync(t, tensors).GetAwaiter().GetResult();
        Interlocked.Add(ref _communicationTicks, System.Diagnostics.Stopwatch.GetElapsedTime(start).Ticks);
    }

    /// <summary>Sums of scalars over the group, in rank order (the same array on every member).</summary>
    public double[] Sum(params double[] values)
    {
        if (_transport is not { Size: > 1 } t) return (double[])values.Clone();
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var sums = AllReduce.SumAsync(t, values).GetAwaiter().GetResult();
        Interlocked.Add(ref _communicationTicks, System.Diagnostics.Stopwatch.GetElapsedTime(start).Ticks);
        return sums;
    }

    /// <summary>
    /// Every member's <paramref name="value"/>, by rank (the same array on every member): each member places its value,
    /// cut into 16-bit pieces, in its own slots of a zero vector, and the group's sum of those vectors is exact.
    /// </summary>
    public ulong[] Gather(ulong value)
    {
        if (IsSolo) return [value];
        var slots = new double[Size * 4];
        for (int i = 0; i < 4; i++) slots[Rank * 4 + i] = (value >> (16 * i)) & 0xFFFF;
        var sums = Sum(slots);
        var values = new ulong[Size];
        for (int r = 0; r < Size; r++)
            for (int i = 0; i < 4; i++) values[r] |= (ulong)sums[r * 4 + i] << (16 * i);
        return values;
    }

    /// <summary>
    /// After optimizer step <paramref name="step"/> (0: before the first), every <see cref="CheckEvery"/> steps: the members compare an XxHash3
    /// of <paramref name="weights"/> (their bytes, in order) and every member throws <see cref="LearnersDivergedException"/>
    /// when they differ. Every member makes the call after the same step, so the comparison is itself a group sum.
    /// </summary>
    public void CheckAgreement(int step, IEnumerable<Tensor> weights)
    {
        if (IsSolo || CheckEvery <= 0 || step % CheckEvery != 0) return;
        var hashes = Gather(WeightHash(weights));
        if (hashes.Distinct().Count() == 1) return;
        var byHash = hashes.Select((h, r) => (h, r)).GroupBy(x => x.h)
            .Select(g => $"{g.Key:x16} on learner(s) {string.Join(", ", g.Select(x => x.r))}");
        throw new LearnersDivergedException(step == 0
            ? $"the learners start from different weights (hash {string.Join("; ", byHash)}): every learner must load the same model (and checkpoint, when resuming)"
            : $"the learners' weights differ after optimizer step {step} (hash {string.Join("; ", byHash)}): the replicas diverged, and the group stops (checked every {CheckEvery} step(s), rlft.job.group-check-every)");
    }

    /// <summary>XxHash3 of the tensors' bytes in order (CPU copies of device tensors), the same for bitwise equal weights.</summary>
    public static ulong WeightHash(IEnumerable<Tensor> weights)
    {
        var hash = new System.IO.Hashing.XxHash3();
        foreach (var w in weights)
        {
            using var scope = NewDisposeScope();
            var cpu = w.detach().cpu().contiguous();
            hash.Append(cpu.bytes);
        }
        return hash.GetCurrentHashAsUInt64();
    }

    /// <summary>
    /// This member's contiguous share of <paramref name="count"/> rows cut into whole units of <paramref name="unit"/>
    /// rows (a GRPO group is never split): units [r·U/N, (r+1)·U/N). Every member's share is non-empty or this refuses.
    /// </summary>
    public (int Start, int Count) Share(int count, int unit = 1) => Share(count, unit, Rank, Size);

    public static (int Start, int Count) Share(int count, int unit, int rank, int size)
    {
        if (unit < 1 || count % unit != 0) throw new ArgumentException($"a batch of {count} rows is not a whole number of units of {unit}");
        int units = count / unit;
        if (units < size) throw new ArgumentException($"a batch of {units} {(unit == 1 ? "sample(s)" : $"group(s) of {unit}")} cannot give each of {size} learners a share");
        int lo = (int)((long)rank * units / size), hi = (int)((long)(rank + 1) * units / size);
        return (lo * unit, (hi - lo) * unit);
    }

    /// <summary>
    /// Group-wide weighted statistics: Σ_members w·v for every key (keys in ordinal order, the same on every member),
    /// where each member passes its statistics and its weight — its share of what the statistic averages over.
    /// </summary>
    public Dictionary<string, double> Weighted(IReadOnlyDictionary<string, double> stats, double weight)
    {
        if (IsSolo) return new(stats);
        var keys = stats.Keys.Order(StringComparer.Ordinal).ToList();
        var sums = Sum(keys.Select(k => stats[k] * weight).ToArray());
        return keys.Select((k, i) => (k, sums[i])).ToDictionary(x => x.k, x => x.Item2);
    }
}

/// <summary>The members of a learner group no longer hold the same weights (see <see cref="LearnerGroup.CheckAgreement"/>).</summary>
internal sealed class LearnersDivergedException(string message) : Exception(message);
