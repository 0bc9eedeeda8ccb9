using FsCheck.Xunit;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>
/// Random scripts of raters asking for work, rating (sometimes late, sometimes twice, sometimes unasked) and time
/// passing; a model of what was granted and accepted checks the queue's promises after every step.
/// </summary>
public class FeedbackStateProperties
{
    const long Lease = 1_000;
    static readonly string[] Raters = ["r0", "r1", "r2", "r3"];

    [Property(MaxTest = 300)]
    public void Leases_and_ratings_keep_their_promises(int[] script)
    {
        var state = new FeedbackState();
        var items = Enumerable.Range(0, 4).Select(i => new FeedbackItem($"i{i}", FeedbackKind.Compare, "p", [new("a", "x"), new("b", "y")], 1 + i % 3, 8_000, "drop", null)).ToList();
        foreach (var e in state.DecideEnqueue(items, 0).Events) state.Apply(e);
        var needed = items.ToDictionary(i => i.Id, i => i.RatersNeeded);
        var leases = new List<(string Item, string Rater, long Expiry)>();
        var ratings = new List<(string Item, string Rater)>();
        long now = 0;

        foreach (int x in script)
        {
            int v = x & int.MaxValue;
            string rater = Raters[v / 3 % Raters.Length];
            switch (v % 3)
            {
                case 0:
                    var (offer, lease) = state.DecideNext(rater, now, Lease);
                    if (lease is null) break;
                    // A new lease: never a second one for this rater on this item, never more raters than needed.
                    Assert.DoesNotContain(leases, l => l.Item == lease.ItemId && l.Rater == rater);
                    int busy = ratings.Count(r => r.Item == lease.ItemId)
                        + leases.Count(l => l.Item == lease.ItemId && l.Expiry > now && !ratings.Contains((l.Item, l.Rater)));
                    Assert.True(busy < needed[lease.ItemId], $"{lease.ItemId} handed to {rater} with {busy} of {needed[lease.ItemId]} slots taken");
                    Assert.Equal(lease.ItemId, offer!.Item.Id);
                    state.Apply(lease);
                    leases.Add((lease.ItemId, rater, lease.ExpiresAtMs));
                    break;
                case 1:
                    string item = $"i{v / 12 % 4}";
                    var (events, existing, rejection) = state.DecideRating(new SubmitRating(rater, item, v % 2 == 0 ? "a" : "b", null), Guid.NewGuid().ToString("N"), now);
                    foreach (var e in events) state.Apply(e);
                    if (events.Count > 0)
                    {
                        Assert.Contains(leases, l => l.Item == item && l.Rater == rater);
                        Assert.DoesNotContain((item, rater), ratings);
                        ratings.Add((item, rater));
                        Assert.True(ratings.Count(r => r.Item == item) <= needed[item]);
                    }
                    else Assert.True(existing is not null ? ratings.Contains((item, rater)) : rejection is not null);
                    break;
                default:
                    now += v % 1_500;
                    foreach (var e in state.DecideCloses(now)) state.Apply(e);
                    break;
            }
        }
        foreach (var r in Raters) Assert.Equal(ratings.Count(x => x.Rater == r), state.RatedBy(r));
        Assert.Equal(ratings.Count, state.RatingCount);
    }

    /// <summary>
    /// Any interleaving of handing out, rating (with verdicts), undoing, skipping, flagging and time passing: the export
    /// holds exactly the standing ratings, each item's count matches its ratings view, its resolution and its raters'
    /// tallies, no rater answers an item twice or one they set aside, and a snapshot rebuilds the same export.
    /// </summary>
    [Property(MaxTest = 300)]
    public void Rate_undo_skip_and_timeout_interleavings_keep_counts_consistent_with_the_export(int seed)
    {
        // A script of 80 steps drawn from the seed: FsCheck's own integers are small and repetitive, too few distinct
        // steps to reach an undo (which needs a lease, a rating and the undo, for one rater, within the window).
        var random = new Random(seed);
        Undos += Run(Enumerable.Range(0, 80).Select(_ => random.Next()).ToArray());
    }

    static int Run(int[] script)
    {
        const long window = 2_000;
        var state = new FeedbackState(undoWindowMs: window);
        var items = Enumerable.Range(0, 4).Select(i => new FeedbackItem($"i{i}", FeedbackKind.Compare, "p", [new("a", "x"), new("b", "y")], 1 + i % 4, 12_000, "drop", null)
        {
            Verdicts = ["tie", "both-bad"],
        }).ToList();
        foreach (var e in state.DecideEnqueue(items, 0).Events) state.Apply(e);
        var standing = new List<(string Item, string Rater, string Id)>();
        var holds = new Dictionary<string, string>();   // rater -> the item last handed to them
        var undone = new HashSet<string>();
        var setAside = new HashSet<(string, string)>();
        long now = 0;
        int n = 0;
        foreach (int x in script)
        {
            int v = x & int.MaxValue;
            string rater = Raters[v / 7 % Raters.Length];
            // Mostly the item the rater holds (as the page does), sometimes any item (as a confused client might).
            string item = v / 28 % 3 != 0 && holds.TryGetValue(rater, out var held) ? held : $"i{v / 84 % 4}";
            switch (v % 7)
            {
                case 0 or 1:
                    var (offer, lease) = state.DecideNext(rater, now, Lease);
                    if (lease is not null) state.Apply(lease);
                    if (offer is not null) holds[rater] = offer.Item.Id;
                    break;
                case 2:
                    var cmd = v % 3 == 0 ? new SubmitRating(rater, item, null, null) { Verdict = "tie" } : new SubmitRating(rater, item, v % 2 == 0 ? "a" : "b", null);
                    string id = $"r{n++}";
                    var (events, _, _) = state.DecideRating(cmd, id, now);
                    foreach (var e in events) state.Apply(e);
                    if (events.Count > 0)
                    {
                        Assert.DoesNotContain(standing, s => s.Item == item && s.Rater == rater);
                        Assert.DoesNotContain((item, rater), setAside);
                        standing.Add((item, rater, id));
                    }
                    break;
                case 3:
                    var (undo, _, _) = state.DecideUndo(new UndoRating(rater, null), now, Lease);
                    if (undo is not null)
                    {
                        state.Apply(undo);
                        Assert.Equal(rater, undo.Rater);
                        Assert.Equal(1, standing.RemoveAll(s => s.Id == undo.RatingId));
                        undone.Add(undo.RatingId);
                        holds[rater] = undo.TaskId;
                    }
                    break;
                case 4 or 5:
                    var (aside, _, _) = state.DecideSetAside(new SetAsideTask(rater, item, v % 7 == 5, null), now, closeAfterFlags: 2);
                    foreach (var e in aside) state.Apply(e);
                    if (aside.Count > 0) setAside.Add((item, rater));
                    break;
                default:
                    now += v % 1_500;
                    foreach (var e in state.DecideCloses(now)) state.Apply(e);
                    break;
            }
            var export = state.Export();
            Assert.Equal(standing.Select(s => s.Id).Order(), export.Ratings.Select(r => r.RatingId).Order());
            Assert.DoesNotContain(export.Ratings, r => undone.Contains(r.RatingId));
            foreach (var i in items)
            {
                int count = export.Ratings.Count(r => r.TaskId == i.Id);
                Assert.True(count <= i.RatersNeeded);
                Assert.Equal(count, state.RatingsOf([i.Id]).Ratings.Count);
                if (state.Resolutions.FirstOrDefault(r => r.ItemId == i.Id) is { } resolved) Assert.Equal(count, resolved.Ratings.Count);
            }
            foreach (var r in Raters) Assert.Equal(export.Ratings.Count(x => x.Rater == r), state.RatedBy(r));
            Assert.Equal(export.Ratings.Count, state.Stats().Ratings);
        }
        var copy = FeedbackState.FromSnapshot(state.ToSnapshot(), undoWindowMs: window);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(state.Export()), System.Text.Json.JsonSerializer.Serialize(copy.Export()));
        return undone.Count;
    }

    static int Undos;

    /// <summary>The interleavings above do exercise undo (a run where none happened would test little).</summary>
    [Fact]
    public void The_interleaving_property_undoes_ratings()
    {
        Undos = 0;
        for (int seed = 0; seed < 100; seed++) Rate_undo_skip_and_timeout_interleavings_keep_counts_consistent_with_the_export(seed);
        Assert.True(Undos >= 20, $"only {Undos} undos in 100 scripts");
    }
}
