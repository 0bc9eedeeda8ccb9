using FsCheck;
using FsCheck.Fluent;
using Rlft.Actors.Coordination;

namespace Rlft.Tests.Actors;

public class WorkLedgerTests
{
    static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void Work_of_a_lost_worker_is_reissued_and_completes_exactly_once()
    {
        var ledger = new WorkLedger<string>();
        for (int i = 0; i < 3; i++) ledger.Enqueue(new WorkItem<string>(i, $"b{i}"));
        Assert.Equal(0, ledger.Assign("a", T0, TimeSpan.FromMinutes(1))!.BatchId);
        Assert.Equal(1, ledger.Assign("b", T0, TimeSpan.FromMinutes(1))!.BatchId);
        Assert.Equal([0L], ledger.WorkerLost("a"));
        Assert.Equal(0, ledger.Assign("b", T0, TimeSpan.FromMinutes(1))!.BatchId);   // reissued first
        Assert.True(ledger.Complete(0, "b"));
        Assert.False(ledger.Complete(0, "a"));                                        // late answer from the lost worker
        Assert.Equal(1, ledger.Reissued);
        Assert.Equal(1, ledger.Duplicates);
    }

    [Fact]
    public void Timed_out_work_goes_back_to_the_queue()
    {
        var ledger = new WorkLedger<string>();
        ledger.Enqueue(new WorkItem<string>(1, "x"));
        ledger.Assign("a", T0, TimeSpan.FromSeconds(30));
        Assert.Empty(ledger.Expire(T0.AddSeconds(29)));
        Assert.Equal([1L], ledger.Expire(T0.AddSeconds(30)));
        Assert.Equal(1, ledger.Pending);
    }

    [Fact]
    public void A_late_answer_while_the_reissued_copy_waits_completes_it()
    {
        var ledger = new WorkLedger<string>();
        ledger.Enqueue(new WorkItem<string>(1, "x"));
        ledger.Assign("a", T0, TimeSpan.FromSeconds(1));
        ledger.Expire(T0.AddSeconds(5));
        Assert.True(ledger.Complete(1, "a"));
        Assert.Equal(0, ledger.Pending);
        Assert.Null(ledger.Assign("b", T0, TimeSpan.FromSeconds(1)));
    }

    /// <summary>Any interleaving of assign / complete / loss / timeout completes every batch exactly once.</summary>
    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property Every_batch_completes_exactly_once_under_any_interleaving(int[] script)
    {
        const int batches = 6;
        var ledger = new WorkLedger<int>();
        for (int i = 0; i < batches; i++) ledger.Enqueue(new WorkItem<int>(i, i));
        var accepted = new List<long>();
        var held = new List<(string Worker, long Batch)>();   // answers a worker may still send
        var now = T0;
        foreach (int op in script.Select(Math.Abs))
        {
            string worker = $"w{op % 3}";
            now = now.AddSeconds(1);
            switch (op % 4)
            {
                case 0 when ledger.Assign(worker, now, TimeSpan.FromSeconds(3)) is { } item: held.Add((worker, item.BatchId)); break;
                case 1 when held.Count > 0:
                    var (w, b) = held[op % held.Count];
                    held.RemoveAt(op % held.Count);
                    if (ledger.Complete(b, w)) accepted.Add(b);
                    break;
                case 2: ledger.WorkerLost(worker); break;
                case 3: ledger.Expire(now); break;
            }
        }
        // Drain: a fresh worker finishes whatever is left; stale answers arrive last.
        while (ledger.Assign("final", now, TimeSpan.FromHours(1)) is { } item)
            if (ledger.Complete(item.BatchId, "final")) accepted.Add(item.BatchId);
        foreach (var (w, b) in held) if (ledger.Complete(b, w)) accepted.Add(b);
        foreach (var id in ledger.WorkerLost("final")) { }
        return (accepted.Count == accepted.Distinct().Count()).Label("no batch accepted twice")
            .And(accepted.Count + ledger.InFlight + ledger.Pending == batches).Label("no batch lost");
    }
}
