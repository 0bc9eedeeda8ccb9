using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>The rater workflow in the pure state: answers beyond A/B, skip and flag, undo, discard, guidelines, raters.</summary>
public class FeedbackWorkflowStateTests
{
    const long Lease = 1000;
    const long Window = 60_000;

    static FeedbackItem Pair(string id, int raters = 1, string[]? verdicts = null, bool strength = false, RationalePolicy rationale = RationalePolicy.Optional) =>
        new(id, FeedbackKind.Compare, "p", [new("a", "x"), new("b", "y")], raters, 600_000, "drop", null)
        {
            Verdicts = verdicts ?? ["tie", "both-bad"], AskStrength = strength, Rationale = rationale,
        };

    static FeedbackItem Scored(string id, params string[] criteria) =>
        new(id, FeedbackKind.Score, "p", [new("a", "x"), new("b", "y")], 1, 600_000, "drop", null) { Criteria = criteria };

    /// <summary>A state with a 60 s undo window: a fully rated item stays open (handed to nobody) for that long.</summary>
    static FeedbackState With(params FeedbackItem[] items)
    {
        var s = new FeedbackState(undoWindowMs: Window);
        foreach (var e in s.DecideEnqueue(items, 0).Events) s.Apply(e);
        return s;
    }

    static TaskOffer? Next(FeedbackState s, string rater, long now)
    {
        var (offer, ev) = s.DecideNext(rater, now, Lease);
        if (ev is not null) s.Apply(ev);
        return offer;
    }

    static (string? RatingId, RatingRejected? Rejection) Rate(FeedbackState s, SubmitRating cmd, long now)
    {
        string id = Guid.NewGuid().ToString("N");
        var (events, existing, rejection) = s.DecideRating(cmd, id, now);
        foreach (var e in events) s.Apply(e);
        return (existing?.RatingId ?? (events.Count > 0 ? id : null), rejection);
    }

    static RatingRejected? SetAside(FeedbackState s, string rater, string task, bool broken, long now, int closeAfter = 0)
    {
        var (events, _, rejection) = s.DecideSetAside(new SetAsideTask(rater, task, broken, broken ? "garbled text" : null), now, closeAfter);
        foreach (var e in events) s.Apply(e);
        return rejection;
    }

    static RatingRejected? Undo(FeedbackState s, string rater, long now, string? id = null)
    {
        var (undone, _, rejection) = s.DecideUndo(new UndoRating(rater, id), now, Lease);
        if (undone is not null) s.Apply(undone);
        return rejection;
    }

    [Fact]
    public void A_pair_takes_a_tie_or_both_bad_only_where_allowed_and_a_strength_only_with_a_choice_where_asked()
    {
        var s = With(Pair("open", strength: true), Pair("strict", verdicts: []));
        Next(s, "alice", 0);
        Assert.Null(Rate(s, new SubmitRating("alice", "open", null, null) { Verdict = "tie", Rationale = "same facts, same tone" }, 1).Rejection);
        Next(s, "alice", 2);
        var noVerdict = Rate(s, new SubmitRating("alice", "strict", null, null) { Verdict = "both-bad" }, 3).Rejection!;
        Assert.Equal((RejectionCode.Invalid, "verdict: this task takes no verdict, only a choice of a or b"), (noVerdict.Code, noVerdict.Message));
        Assert.Contains("strength: this task takes no strength",
            Rate(s, new SubmitRating("alice", "strict", "a", null) { Strength = "much" }, 3).Rejection!.Message);
        Assert.Null(Rate(s, new SubmitRating("alice", "strict", "b", null), 4).Rejection);

        var t = With(Pair("p", strength: true));
        Next(t, "bob", 0);
        Assert.Contains("strength: only a choice takes a strength",
            Rate(t, new SubmitRating("bob", "p", null, null) { Verdict = "tie", Strength = "slightly" }, 1).Rejection!.Message);
        Assert.Null(Rate(t, new SubmitRating("bob", "p", "a", null) { Strength = "slightly" }, 1).Rejection);
        var stored = Assert.Single(t.Export().Ratings);
        Assert.Equal(("a", "slightly", (string?)null), (stored.Choice, stored.Strength, stored.Verdict));
    }

    [Fact]
    public void A_required_rationale_is_required_and_an_identical_resubmission_includes_it()
    {
        var s = With(Pair("p", rationale: RationalePolicy.Required), Pair("q", rationale: RationalePolicy.Off));
        Next(s, "alice", 0);
        Assert.Contains("rationale: this task needs a rationale", Rate(s, new SubmitRating("alice", "p", "a", null), 1).Rejection!.Message);
        var first = Rate(s, new SubmitRating("alice", "p", "a", null) { Rationale = "A cites its source" }, 2);
        var same = Rate(s, new SubmitRating("alice", "p", "a", null) { Rationale = "A cites its source" }, 3);
        var other = Rate(s, new SubmitRating("alice", "p", "a", null) { Rationale = "A is shorter" }, 4);
        Assert.Equal(first.RatingId, same.RatingId);
        Assert.Equal(RejectionCode.Conflict, other.Rejection!.Code);
        Next(s, "alice", 5);
        Assert.Contains("rationale: this task takes no rationale", Rate(s, new SubmitRating("alice", "q", "a", null) { Rationale = "x" }, 6).Rejection!.Message);
    }

    [Fact]
    public void A_score_item_with_criteria_needs_every_criterion_for_every_completion()
    {
        var s = With(Scored("s", "helpfulness", "harmlessness"));
        Next(s, "alice", 0);
        Dictionary<string, IReadOnlyDictionary<string, int>> Criteria(int a1, int a2, int? b1, int b2)
        {
            var b = new Dictionary<string, int> { ["harmlessness"] = b2 };
            if (b1 is { } v) b["helpfulness"] = v;
            return new() { ["a"] = new Dictionary<string, int> { ["helpfulness"] = a1, ["harmlessness"] = a2 }, ["b"] = b };
        }
        Assert.Contains("scores: expected {completion id: {criterion: 1..7}}", Rate(s, new SubmitRating("alice", "s", null, new Dictionary<string, int> { ["a"] = 3, ["b"] = 4 }), 1).Rejection!.Message);
        Assert.Equal("scores.b.helpfulness: missing", Rate(s, new SubmitRating("alice", "s", null, null) { Criteria = Criteria(5, 7, null, 6) }, 1).Rejection!.Message);
        Assert.Equal("scores.a.helpfulness: 9 is outside 1..7", Rate(s, new SubmitRating("alice", "s", null, null) { Criteria = Criteria(9, 7, 2, 6) }, 1).Rejection!.Message);
        Assert.Null(Rate(s, new SubmitRating("alice", "s", null, null) { Criteria = Criteria(5, 7, 2, 6) }, 1).Rejection);
        Assert.Equal(5, Assert.Single(s.Export().Ratings).Criteria!["a"]["helpfulness"]);
    }

    [Fact]
    public void A_skipped_item_goes_to_another_rater_never_back_to_the_skipper_and_cannot_be_rated_by_them()
    {
        var s = With(Pair("i1"), Pair("i2"));
        Assert.Equal("i1", Next(s, "alice", 0)!.Item.Id);
        Assert.Null(SetAside(s, "alice", "i1", broken: false, 1));
        Assert.Equal("i1", Next(s, "bob", 2)!.Item.Id);            // the slot was freed at once, not at lease expiry
        Assert.Equal("i2", Next(s, "alice", 3)!.Item.Id);
        Assert.Equal(RejectionCode.NotLeased, Rate(s, new SubmitRating("alice", "i1", "a", null), 4).Rejection!.Code);
        Assert.Null(SetAside(s, "alice", "i1", broken: false, 5));  // a repeat is a duplicate, not a second skip
        Assert.Equal(RejectionCode.Conflict, SetAside(s, "alice", "i1", broken: true, 5)!.Code);
        var me = s.Progress("alice", 0, 6);
        Assert.Equal((1, 0, 0), (me.Skipped, me.Flagged, me.Rated));
        Assert.Equal(RejectionCode.NotLeased, SetAside(s, "carol", "i1", broken: false, 7)!.Code);
    }

    [Fact]
    public void Flags_list_the_item_for_the_admin_and_close_it_as_discarded_after_the_configured_number()
    {
        var s = With(Pair("i1", raters: 3));
        Next(s, "alice", 0); Next(s, "bob", 0); Next(s, "carol", 0);
        Assert.Null(SetAside(s, "alice", "i1", broken: true, 1, closeAfter: 2));
        Assert.Empty(s.Resolutions);
        Assert.Null(SetAside(s, "bob", "i1", broken: true, 2, closeAfter: 2));
        var r = Assert.Single(s.Resolutions);
        Assert.Equal((ResolutionOutcome.Discarded, "drop", "flagged as broken by 2 raters"), (r.Outcome, r.Fallback, r.Reason));
        Assert.Equal(RejectionCode.Closed, Rate(s, new SubmitRating("carol", "i1", "a", null), 3).Rejection!.Code);
        var flagged = Assert.Single(s.Overview(4).Flagged);
        Assert.Equal(["alice", "bob"], flagged.Flags.Select(f => f.Rater));
        Assert.Equal(ResolutionOutcome.Discarded, flagged.Outcome);
    }

    [Fact]
    public void Undo_takes_back_the_latest_rating_once_and_the_rater_holds_the_item_again()
    {
        var s = With(Pair("i1", raters: 2), Pair("i2"), Pair("i3"));
        Next(s, "alice", 0);
        var first = Rate(s, new SubmitRating("alice", "i1", "a", null), 10).RatingId;
        Next(s, "alice", 20);                                          // now holds i2
        Assert.Equal(RejectionCode.Conflict, Undo(s, "alice", 30, id: "not-the-latest")!.Code);
        Assert.Null(Undo(s, "alice", 30, id: first));
        Assert.Empty(s.Export().Ratings);
        Assert.Equal(0, s.RatedBy("alice"));
        Assert.Equal("i1", Next(s, "alice", 40)!.Item.Id);             // the undone item comes back to be answered again
        var again = Rate(s, new SubmitRating("alice", "i1", "b", null), 50).RatingId;   // a different answer is fine now
        Assert.NotEqual(first, again);
        Assert.Equal("i2", Next(s, "alice", 51)!.Item.Id);             // i2, handed over and untouched, went back to the pool
        Assert.Equal("b", Assert.Single(s.Export().Ratings).Choice);
        Assert.Equal(first, Assert.Single(s.Export().Undone).RatingId);
        // A repeat of the accepted undo is a duplicate; a second undo of something older is refused.
        var (_, duplicate, _) = s.DecideUndo(new UndoRating("alice", first), 60, Lease);
        Assert.True(duplicate!.Duplicate);
        Assert.Null(Undo(s, "alice", 60));
        Assert.Contains("nothing to undo", Undo(s, "alice", 61)!.Message);
    }

    [Fact]
    public void Undo_is_refused_after_the_window_and_once_the_item_closed()
    {
        var s = With(Pair("i1", raters: 2), Pair("i2"));
        Next(s, "alice", 0);
        Rate(s, new SubmitRating("alice", "i1", "a", null), 0);
        Assert.Contains("undo window of 60 s has passed", Undo(s, "alice", Window + 1)!.Message);
        Next(s, "alice", 1);
        Rate(s, new SubmitRating("alice", "i2", "a", null), 2);        // i2 needs one rater: it is complete
        foreach (var e in s.DecideCloses(2 + Window)) s.Apply(e);      // and closes once the window has passed
        Assert.Equal(RejectionCode.Closed, Undo(s, "alice", 2 + Window)!.Code);
        Assert.Null(s.Progress("alice", 0, 3).UndoRatingId);
    }

    [Fact]
    public void A_fully_rated_item_waits_out_the_undo_window_handed_to_nobody_then_resolves_once()
    {
        var s = With(Pair("i1"), Pair("i2"));
        Next(s, "alice", 0);
        Rate(s, new SubmitRating("alice", "i1", "a", null), 10);
        Assert.Empty(s.Resolutions);
        Assert.Equal("i2", Next(s, "bob", 11)!.Item.Id);               // i1 has its rating: nobody else gets it
        Assert.Equal((1, 1), (s.Stats().Pending, s.Stats().Rated));     // counted as rated while it waits
        Assert.Empty(s.DecideCloses(10 + Window - 1));
        // Undone inside the window: alice answers again, and the window starts over from her new rating.
        Assert.Null(Undo(s, "alice", 20));
        Rate(s, new SubmitRating("alice", "i1", "b", null), 30);
        Assert.Empty(s.DecideCloses(10 + Window));
        var closes = s.DecideCloses(30 + Window);
        foreach (var e in closes) s.Apply(e);
        var r = Assert.Single(s.Resolutions);
        Assert.Equal((ResolutionOutcome.Rated, "b"), (r.Outcome, Assert.Single(r.Ratings).Choice));
        Assert.Empty(s.DecideCloses(40 + Window));
    }

    [Fact]
    public void Without_an_undo_window_a_fully_rated_item_closes_with_its_last_rating()
    {
        var s = new FeedbackState();
        foreach (var e in s.DecideEnqueue([Pair("i1")], 0).Events) s.Apply(e);
        Next(s, "alice", 0);
        Rate(s, new SubmitRating("alice", "i1", "a", null), 1);
        Assert.Equal(ResolutionOutcome.Rated, Assert.Single(s.Resolutions).Outcome);
        Assert.Contains("undo is turned off", s.DecideUndo(new UndoRating("alice", null), 2, Lease).Rejection!.Message);
    }

    [Fact]
    public void The_admin_discards_an_open_item_once_and_not_a_closed_one()
    {
        var s = With(Pair("i1"), Pair("i2"));
        var (closed, _, _) = s.DecideDiscard(new DiscardItem("i1", "prompt is empty"), 5);
        s.Apply(closed!);
        Assert.True(s.DecideDiscard(new DiscardItem("i1", "again"), 6).Duplicate);
        Next(s, "alice", 7);
        Rate(s, new SubmitRating("alice", "i2", "a", null), 8);
        foreach (var e in s.DecideCloses(8 + Window)) s.Apply(e);
        Assert.Equal(RejectionCode.Closed, s.DecideDiscard(new DiscardItem("i2", "x"), 9 + Window).Rejection!.Code);
        Assert.Equal(RejectionCode.UnknownTask, s.DecideDiscard(new DiscardItem("zz", "x"), 9).Rejection!.Code);
        Assert.Equal((ResolutionOutcome.Discarded, "prompt is empty"), (s.Resolutions[0].Outcome, s.Resolutions[0].Reason));
    }

    [Fact]
    public void A_rating_records_the_guideline_version_its_item_was_handed_out_under()
    {
        var s = With(Pair("i1"), Scored("s1"), Pair("i2") with { Guideline = "code" });
        s.Apply(s.Guidelines.Decide("default", "Be kind.", "config", 0)!);
        s.Apply(s.Guidelines.Decide("compare", "Pick the better one.", "admin", 0)!);
        var offer = Next(s, "alice", 1)!;
        Assert.Equal(("compare", 1, "Pick the better one."), (offer.Guideline!.Name, offer.Guideline.Version, offer.Guideline.Markdown));
        s.Apply(s.Guidelines.Decide("compare", "Pick the better one; ties are fine.", "admin", 2)!);
        Assert.Equal(1, Next(s, "alice", 3)!.Guideline!.Version);       // the held lease keeps its version
        Rate(s, new SubmitRating("alice", "i1", "a", null), 4);
        Assert.Equal(new GuidelineRef("compare", 1), s.Export().Ratings[0].Guideline);
        // No "score" guideline: a score item falls back to "default"; so does an item naming an unset guideline.
        var bob = Next(s, "bob", 5)!;
        Assert.Equal(("s1", "default", 1), (bob.Item.Id, bob.Guideline!.Name, bob.Guideline.Version));
        var carol = Next(s, "carol", 6)!;
        Assert.Equal(("i2", "default"), (carol.Item.Id, carol.Guideline!.Name));
        Assert.Null(s.Guidelines.Decide("compare", "Pick the better one; ties are fine.", "admin", 7));   // same text: no new version
    }

    [Fact]
    public void A_configured_guideline_becomes_a_version_only_when_the_config_text_changes()
    {
        var book = new GuidelineBook();
        book.Apply(book.Decide("default", "v1", "config", 0)!);
        Assert.Null(book.Decide("default", "v1", "config", 1));
        book.Apply(book.Decide("default", "edited by the admin", "admin", 2)!);
        Assert.Null(book.Decide("default", "v1", "config", 3));                 // a restart keeps the admin's edit
        Assert.Equal(3, book.Decide("default", "v2", "config", 4)!.Version);    // a changed config text wins
    }

    [Fact]
    public void Raters_are_added_revoked_and_given_new_tokens_by_events_and_a_config_revocation_stands()
    {
        var book = new RaterBook([new RaterEntry("alice", new string('a', 64)), new RaterEntry("mallory", new string('m', 64), Revoked: true)]);
        string h1 = new('1', 64), h2 = new('2', 64);
        Assert.Contains("already exists", book.Decide(new ChangeRater(RaterChange.Add, "alice", h1), 0).Rejection!.Message);
        Assert.Contains("token: already in use", book.Decide(new ChangeRater(RaterChange.Add, "zoe", new string('a', 64)), 0).Rejection!.Message);
        Assert.Equal(RejectionCode.UnknownRater, book.Decide(new ChangeRater(RaterChange.Revoke, "nobody", null), 0).Rejection!.Code);
        Assert.Contains("revoked in the config", book.Decide(new ChangeRater(RaterChange.IssueToken, "mallory", h2), 0).Rejection!.Message);
        book.Apply(book.Decide(new ChangeRater(RaterChange.Add, "zoe", h1), 1).Event!);
        book.Apply(book.Decide(new ChangeRater(RaterChange.Revoke, "alice", null), 2).Event!);
        Assert.Contains(("alice", new string('a', 64), true, "config"), book.Effective());
        Assert.Contains(("zoe", h1, false, "api"), book.Effective());
        book.Apply(book.Decide(new ChangeRater(RaterChange.IssueToken, "alice", h2), 3).Event!);
        Assert.Contains(("alice", h2, false, "config"), book.Effective());     // a new token lifts the API revocation
        Assert.Contains(("mallory", new string('m', 64), true, "config"), book.Effective());
    }

    [Fact]
    public void A_state_with_every_workflow_event_survives_its_snapshot()
    {
        var s = new FeedbackState([new RaterEntry("alice", new string('a', 64))], Window);
        foreach (var e in s.DecideEnqueue([Pair("i1", raters: 2), Pair("i2"), Scored("s1", "helpfulness"), Pair("i3")], 0).Events) s.Apply(e);
        s.Apply(s.Guidelines.Decide("default", "Read carefully.", "config", 0)!);
        Next(s, "alice", 1);
        Rate(s, new SubmitRating("alice", "i1", null, null) { Verdict = "tie", Rationale = "same" }, 2);
        Next(s, "alice", 3);
        SetAside(s, "alice", "i2", broken: true, 4);
        Next(s, "bob", 5);
        Rate(s, new SubmitRating("bob", "i1", "b", null) { }, 6);
        Undo(s, "bob", 7);
        s.Apply(s.Raters.Decide(new ChangeRater(RaterChange.Add, "zoe", new string('c', 64)), 8).Event!);

        var copy = FeedbackState.FromSnapshot(s.ToSnapshot(), [new RaterEntry("alice", new string('a', 64))], Window);
        string Json(object o) => System.Text.Json.JsonSerializer.Serialize(o);
        Assert.Equal(Json(s.ToSnapshot()), Json(copy.ToSnapshot()));
        Assert.Equal(Json(s.Overview(9)), Json(copy.Overview(9)));
        Assert.Equal(Json(s.Progress("bob", 0, 9)), Json(copy.Progress("bob", 0, 9)));
        Assert.Equal(Json(s.DecideNext("bob", 10, Lease)), Json(copy.DecideNext("bob", 10, Lease)));
        Assert.Equal(Json(s.Raters.Effective()), Json(copy.Raters.Effective()));
    }
}

/// <summary>The admin overview's figures, checked against hand computations.</summary>
public class FeedbackOverviewTests
{
    const long Hour = 3_600_000;

    [Fact]
    public void Throughput_agreement_and_kappa_match_hand_computed_values()
    {
        var s = new FeedbackState();
        var items = Enumerable.Range(1, 4).Select(i => new FeedbackItem($"i{i}", FeedbackKind.Compare, "p", [new("a", "x"), new("b", "y")], 2, 10 * Hour, "drop", null)).ToList();
        foreach (var e in s.DecideEnqueue(items, 0).Events) s.Apply(e);
        // alice: A, A, B, A over two hours; bob: A, B, B, A within ten minutes.
        string[] alice = ["a", "a", "b", "a"], bob = ["a", "b", "b", "a"];
        for (int i = 0; i < 4; i++)
        {
            foreach (var (rater, choice, at) in new[] { ("alice", alice[i], i * 2 * Hour / 3), ("bob", bob[i], 5 * Hour + i * 200_000L) })
            {
                var (offer, lease) = s.DecideNext(rater, at, Hour);
                s.Apply(lease!);
                foreach (var e in s.DecideRating(new SubmitRating(rater, offer!.Item.Id, choice, null), $"{rater}{i}", at).Events) s.Apply(e);
            }
        }
        var o = s.Overview(6 * Hour);
        var a = o.Raters.Single(r => r.Name == "alice");
        var b = o.Raters.Single(r => r.Name == "bob");
        // alice's four ratings span two hours: 2 per hour; bob's span ten minutes, counted as one hour: 4.
        Assert.Equal((4, 2.0), (a.Rated, a.PerHour!.Value));
        Assert.Equal(4.0, b.PerHour!.Value);
        // Units (A,A) (A,B) (B,B) (A,A): n_A = 5, n_B = 3, D_o = 2/8, D_e = 2·5·3/(8·7); α = 1 − D_o/D_e = 8/15.
        Assert.Equal(8.0 / 15, a.CompareAlpha!.Value, 12);
        Assert.Equal(8.0 / 15, b.CompareAlpha!.Value, 12);
        Assert.Null(a.ScoreAlpha);
        // κ: p_o = 3/4; alice A 3/4, bob A 1/2: p_e = 3/4·1/2 + 1/4·1/2 = 1/2; κ = (3/4 − 1/2)/(1 − 1/2) = 1/2.
        var pair = Assert.Single(o.Pairs);
        Assert.Equal(("alice", "bob", 4), (pair.A, pair.B, pair.SharedItems));
        Assert.Equal(0.5, pair.CompareKappa!.Value, 12);
        // Hours: alice at 0, 0:40, 1:20, 2:00; bob all in hour 5.
        Assert.Equal([0, Hour, 2 * Hour, 5 * Hour], o.Hours.Select(h => h.HourMs));
        Assert.Equal([2, 1, 1, 4], o.Hours.Select(h => h.PerRater.Values.Sum()));
        Assert.Equal(4, o.Hours[^1].PerRater["bob"]);
    }
}
