using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

public class FeedbackStateTests
{
    const long Lease = 1000;

    static FeedbackItem Item(string id, int raters = 1, long timeoutMs = 60_000, FeedbackKind kind = FeedbackKind.Compare) =>
        new(id, kind, "p", kind == FeedbackKind.Compare ? [new("a", "x"), new("b", "y")] : [new("a", "x")], raters, timeoutMs, "drop", "batch-7/3");

    static FeedbackState With(params FeedbackItem[] items)
    {
        var s = new FeedbackState();
        foreach (var e in s.DecideEnqueue(items, 0).Events) s.Apply(e);
        return s;
    }

    static TaskOffer? Next(FeedbackState s, string rater, long now)
    {
        var (offer, ev) = s.DecideNext(rater, now, Lease);
        if (ev is not null) s.Apply(ev);
        return offer;
    }

    static RatingRejected? Rate(FeedbackState s, string rater, string task, string choice, long now)
    {
        var (events, _, rejection) = s.DecideRating(new SubmitRating(rater, task, choice, null), Guid.NewGuid().ToString("N"), now);
        foreach (var e in events) s.Apply(e);
        return rejection;
    }

    [Fact]
    public void An_item_is_never_handed_to_the_same_rater_twice_even_after_the_lease_expires()
    {
        var s = With(Item("i1", raters: 2));
        Assert.Equal("i1", Next(s, "alice", 0)!.Item.Id);
        Assert.Null(Next(s, "alice", 5 * Lease) is { } o && o.Item.Id == "i1" ? o : null);
        Assert.Equal("i1", Next(s, "bob", 5 * Lease)!.Item.Id);
    }

    [Fact]
    public void Leases_cap_raters_at_a_time_and_an_expired_lease_frees_the_slot()
    {
        var s = With(Item("i1", raters: 1));
        Assert.NotNull(Next(s, "alice", 0));
        Assert.Null(Next(s, "bob", Lease - 1));
        Assert.Equal("i1", Next(s, "bob", Lease + 1)!.Item.Id);
    }

    [Fact]
    public void A_rater_asking_again_gets_their_current_lease_back()
    {
        var s = With(Item("i1"), Item("i2"));
        Assert.Equal("i1", Next(s, "alice", 0)!.Item.Id);
        Assert.Equal("i1", Next(s, "alice", 10)!.Item.Id);
        Assert.Null(Rate(s, "alice", "i1", "a", 20));
        Assert.Equal("i2", Next(s, "alice", 30)!.Item.Id);
    }

    [Fact]
    public void An_item_closes_when_enough_raters_answered_and_resolves_with_its_origin()
    {
        var s = With(Item("i1", raters: 2));
        Next(s, "alice", 0); Next(s, "bob", 0);
        Assert.Null(Rate(s, "alice", "i1", "a", 1));
        Assert.Empty(s.Resolutions);
        Assert.Null(Rate(s, "bob", "i1", "b", 2));
        var r = Assert.Single(s.Resolutions);
        Assert.Equal((ResolutionOutcome.Rated, "batch-7/3", 2, (string?)null), (r.Outcome, r.Origin, r.Ratings.Count, r.Fallback));
        Assert.Equal(0, s.OpenCount);
    }

    [Fact]
    public void A_timed_out_item_resolves_with_the_fallback_marker_and_refuses_late_ratings()
    {
        var s = With(Item("i1", raters: 2, timeoutMs: 5000));
        Next(s, "alice", 0); Next(s, "bob", 0);
        Assert.Null(Rate(s, "alice", "i1", "a", 1));
        Assert.Empty(s.DecideCloses(4999));
        foreach (var e in s.DecideCloses(5000)) s.Apply(e);
        var r = Assert.Single(s.Resolutions);
        Assert.Equal((ResolutionOutcome.TimedOut, "drop", 1), (r.Outcome, r.Fallback, r.Ratings.Count));
        Assert.Equal(RejectionCode.Closed, Rate(s, "bob", "i1", "a", 5001)!.Code);
        Assert.Null(Next(s, "carol", 5001));
    }

    [Fact]
    public void Rejections_name_the_problem()
    {
        var s = With(Item("i1"));
        Assert.Equal(RejectionCode.UnknownTask, Rate(s, "alice", "nope", "a", 0)!.Code);
        Assert.Equal(RejectionCode.NotLeased, Rate(s, "alice", "i1", "a", 0)!.Code);
        Next(s, "alice", 0);
        var bad = Rate(s, "alice", "i1", "zz", 0)!;
        Assert.Equal(RejectionCode.Invalid, bad.Code);
        Assert.Contains("'zz' is not a completion", bad.Message);
    }

    [Fact]
    public void Enqueue_is_idempotent_for_identical_items_and_refuses_a_changed_one()
    {
        var s = With(Item("i1"));
        Assert.Empty(s.DecideEnqueue([Item("i1")], 1).Events);
        Assert.Contains("different content", s.DecideEnqueue([Item("i1", raters: 3)], 1).Problem);
        Assert.Contains("appears twice", s.DecideEnqueue([Item("i2"), Item("i2")], 1).Problem);
    }

    [Fact]
    public void Krippendorff_alpha_matches_the_published_example()
    {
        // Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders, 12 units,
        // missing values; nominal α = 0.743, interval α = 0.849.
        double?[][] coders =
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, null, null, null],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, null, 3],
            [null, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, null],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, null],
        ];
        var units = Enumerable.Range(0, 12).Select(u => (IReadOnlyList<double>)coders.Where(c => c[u] is not null).Select(c => c[u]!.Value).ToList()).ToList();
        Assert.Equal(0.743, Agreement.KrippendorffAlpha(units, Agreement.Nominal)!.Value, 3);
        Assert.Equal(0.849, Agreement.KrippendorffAlpha(units, Agreement.Interval)!.Value, 3);
    }

    [Fact]
    public void Krippendorff_alpha_is_one_for_perfect_agreement_and_undefined_without_pairs()
    {
        Assert.Equal(1.0, Agreement.KrippendorffAlpha([[1, 1], [2, 2], [3, 3]], Agreement.Interval));
        Assert.Equal(1.0, Agreement.KrippendorffAlpha([[4, 4]], Agreement.Interval));
        Assert.Null(Agreement.KrippendorffAlpha([[1], [2]], Agreement.Nominal));
        Assert.True(Agreement.KrippendorffAlpha([[1, 2], [2, 1]], Agreement.Nominal) < 0);
    }
}

public class FeedbackSnapshotTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void A_state_rebuilt_from_its_snapshot_decides_and_reports_the_same()
    {
        var s = new FeedbackState();
        var items = Enumerable.Range(0, 5).Select(i => new FeedbackItem($"i{i}", FeedbackKind.Compare, "p", [new("a", "x"), new("b", "y")], 2, 5_000, "drop", $"o{i}")).ToList();
        foreach (var e in s.DecideEnqueue(items, 0).Events) s.Apply(e);
        foreach (var (rater, t) in new[] { ("alice", 1L), ("bob", 2L), ("alice", 3L), ("carol", 4L) })
        {
            var (offer, lease) = s.DecideNext(rater, t, 1_000);
            if (lease is not null) s.Apply(lease);
            foreach (var e in s.DecideRating(new SubmitRating(rater, offer!.Item.Id, "a", null), $"r{t}", t).Events) s.Apply(e);
        }
        s.Apply(s.DecideNext("dave", 10, 1_000).Event!);
        foreach (var e in s.DecideCloses(5_000)) s.Apply(e);

        var copy = FeedbackState.FromSnapshot(s.ToSnapshot());
        string Json(object o) => System.Text.Json.JsonSerializer.Serialize(o);
        Assert.Equal(Json(s.ToSnapshot()), Json(copy.ToSnapshot()));
        Assert.Equal(Json(s.Stats()), Json(copy.Stats()));
        Assert.Equal(Json(s.Export()), Json(copy.Export()));
        Assert.Equal(Json(s.DecideNext("erin", 100, 1_000)), Json(copy.DecideNext("erin", 100, 1_000)));
        Assert.Equal(s.Resolutions.Count, copy.Resolutions.Count);
    }

    [Fact]
    public async Task A_restarted_node_recovers_from_a_snapshot_plus_the_events_after_it()
    {
        string dir = FeedbackTestNode.TempDirectory();
        // Stopped, not disposed: disposing would delete the folder holding the journal.
        var node = await FeedbackTestNode.StartAsync(o => o with { SnapshotEvery = 5 }, dir);
        await node.Admin.EnqueueAsync(Enumerable.Range(0, 6).Select(i => FeedbackTestNode.Score($"s{i}", "p", $"t{i}")), Ct);
        foreach (var rater in new[] { "alice", "bob", "carol" })
            await new Rlft.Actors.Feedback.SimulatedRater(node.Client(rater), "t").RunAsync(2, ct: Ct);
        string before = await node.Admin.GetTextAsync("/api/v1/export?format=scores", Ct);
        await node.StopAsync();

        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, "feedback.db")}");
        await connection.OpenAsync(Ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM snapshot";
        Assert.True((long)(await command.ExecuteScalarAsync(Ct))! > 0);

        await using var again = await FeedbackTestNode.StartAsync(o => o with { SnapshotEvery = 5 }, dir);
        Assert.Equal(before, await again.Admin.GetTextAsync("/api/v1/export?format=scores", Ct));
        Assert.Equal(6, (await again.RatingsAsync()).Length);
        Assert.Null(await again.Client("dave").NextAsync(Ct));
    }
}
