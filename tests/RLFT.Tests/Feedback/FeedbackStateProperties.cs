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
                    foreach (var e in state.DecideTimeouts(now)) state.Apply(e);
                    break;
            }
        }
        foreach (var r in Raters) Assert.Equal(ratings.Count(x => x.Rater == r), state.RatedBy(r));
        Assert.Equal(ratings.Count, state.RatingCount);
    }
}
