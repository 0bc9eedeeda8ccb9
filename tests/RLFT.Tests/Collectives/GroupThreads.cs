using Rlft.Policy.Collectives;

namespace Rlft.Tests.Collectives;

/// <summary>Runs the members of an in-process group, one dedicated thread each (the calls block), and returns their results by rank.</summary>
static class GroupThreads
{
    public static T[] Run<T>(int size, Func<LearnerGroup, T> member) =>
        Run(InProcessTransport.Create(size), t => member(new LearnerGroup(t)));

    public static T[] Run<T>(IReadOnlyList<ICollectiveTransport> transports, Func<ICollectiveTransport, T> member)
    {
        var results = new T[transports.Count];
        var errors = new Exception?[transports.Count];
        var threads = transports.Select((t, r) => new Thread(() =>
        {
            try { results[r] = member(t); }
            catch (Exception e) { errors[r] = e; }
        }, 64 << 20) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        foreach (var t in threads)
            if (!t.Join(TimeSpan.FromMinutes(3))) throw new TimeoutException("a group member did not finish within 3 minutes");
        if (errors.FirstOrDefault(e => e is not null) is { } error) throw new AggregateException($"member {Array.IndexOf(errors, error)} failed", error);
        return results;
    }
}
