using Akka.Actor;
using Akka.Configuration;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

public class FeedbackSerializerTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static readonly FeedbackItem Item = new("i1", FeedbackKind.Score, "p <b>", [new("a", "x"), new("b", "y")], 2, 60_000, "source:rm", "batch-1/0");
    static readonly RatingRecord Rating = new("r1", "i1", "alice", null, new Dictionary<string, int> { ["a"] = 3, ["b"] = 7 }, 123);

    public static TheoryData<string> Messages() => new(Samples(null!).Select(m => m.GetType().Name));

    static IEnumerable<object> Samples(IActorRef probe) =>
    [
        new EnqueueItems([Item]), new ItemsEnqueued(["i1"], 1), new EnqueueRejected("x"), new NextTask("alice"),
        new TaskOffer(Item, 99), NoTask.Instance, new SubmitRating("alice", "i1", null, Rating.Scores), new RatingAccepted("r1", true),
        new RatingRejected(RejectionCode.Conflict, "c"), GetStats.Instance, new GetRaterStats("alice"), new RaterStats("alice", 3, 4),
        new GetItemRatings(["i1"]), new ItemRatings([Rating], ["i1"]),
        new FeedbackStats(1, 2, 3, 4, new Dictionary<string, int> { ["alice"] = 4 }, 0.5, null), GetExport.Instance,
        new ExportData([Item], [Rating], new Dictionary<string, ResolutionOutcome> { ["i1"] = ResolutionOutcome.TimedOut }),
        new SubscribeResolutions(probe, 3), new ItemResolved(1, "i1", "o", ResolutionOutcome.TimedOut, "drop", "timed out", [Rating], 5),
        FeedbackTick.Instance, new ItemEnqueued(Item, 1), new LeaseGranted("i1", "alice", 1, 2), new RatingRecorded(Rating),
        new ItemClosed("i1", ResolutionOutcome.Rated, "2 of 2", 3),
        new FeedbackSnapshot([new SnapshotItem(Item, 1, new Dictionary<string, long> { ["alice"] = 9 }, ["alice"]) { LeaseGuidelines = new Dictionary<string, GuidelineRef> { ["alice"] = Guide } }], [Rating2],
            [new ItemResolved(1, "i1", null, ResolutionOutcome.Rated, null, "2 of 2", [Rating], 5)], new Dictionary<string, string> { ["alice"] = "i1" })
        {
            SetAside = [Aside], Undone = [Rating], Undos = [Undone], LastRating = new Dictionary<string, string> { ["alice"] = "r2" },
            Guidelines = [new GuidelineSet("default", 1, "# Be kind", "config", 1)], Raters = [new RaterState("zoe", new string('a', 64), true, 1, 2)],
        },
        // schema 2
        new SetAsideTask("alice", "i1", true, "garbled"), new TaskSetAside("i1", true, false), Aside, new UndoRating("alice", "r1"),
        new UndoAccepted("r1", "i1", false), Undone, new DiscardItem("i1", "empty"), new ItemDiscarded("i1", true),
        new SetGuideline("default", "# Hi", "admin"), new GuidelineStored(Guide, true), new GuidelineSet("default", 2, "# Hi", "admin", 3),
        GetGuidelines.Instance, new GuidelineList([new GuidelineVersion("default", 1, "# Hi", 3, "config")]),
        new ChangeRater(RaterChange.Add, "zoe", new string('a', 64)), new RaterChanged("zoe", RaterChange.Add), new RaterAdded("zoe", new string('a', 64), 1),
        new RaterTokenIssued("zoe", new string('b', 64), 2), new RaterRevoked("zoe", 3), new GetRaterProgress("alice", 0),
        new RaterProgress("alice", 3, 1, 1, 0, 9, 12, "r2", 99), GetOverview.Instance,
        new FeedbackOverview(5, 1, 2, 3, 1, 6, 0.5, null,
            [new RaterOverview("alice", "config", false, 3, 1, 1, 0, 1, 5, 3.0, 0.4, null, 2)],
            [new HourCount(0, new Dictionary<string, int> { ["alice"] = 3 })], [new PairAgreement("alice", "bob", 2, 1.0, null)],
            [new FlaggedItem("i1", "p", ResolutionOutcome.Discarded, [Aside])]),
    ];

    static readonly GuidelineRef Guide = new("default", 1);
    static readonly ItemSetAside Aside = new("i1", "bob", true, "garbled", 4);
    static readonly RatingUndone Undone = new("r1", "i1", "alice", 6, 7);
    static readonly RatingRecord Rating2 = new("r2", "i1", "alice", null, null, 124)
    {
        Verdict = "tie", Rationale = "equal", Guideline = Guide,
        Criteria = new Dictionary<string, IReadOnlyDictionary<string, int>> { ["a"] = new Dictionary<string, int> { ["helpfulness"] = 5 } },
    };

    [Fact]
    public void Every_feedback_message_type_has_a_sample_here()
    {
        var types = typeof(IFeedbackMessage).Assembly.GetTypes()
            .Where(t => typeof(IFeedbackMessage).IsAssignableFrom(t) && !t.IsInterface && !t.IsAbstract).Select(t => t.Name).Order().ToList();
        Assert.Equal(types, Samples(null!).Select(m => m.GetType().Name).Distinct().Order().ToList());
    }

    [Fact]
    public void Journal_payloads_name_their_schema_version_and_a_newer_one_is_refused()
    {
        using var system = ActorSystem.Create("ser", ConfigurationFactory.ParseString(FeedbackSerializer.Hocon));
        var serializer = new FeedbackSerializer((ExtendedActorSystem)system);
        Assert.Equal("RatingRecorded@2", serializer.Manifest(new RatingRecorded(Rating)));
        Assert.Equal("FeedbackSnapshot@2", serializer.Manifest(Samples(null!).OfType<FeedbackSnapshot>().First()));
        Assert.Equal("SubmitRating", serializer.Manifest(new SubmitRating("a", "b", "c", null)));   // never stored: no version
        // A schema-1 item (as written before versions) reads with its schema-1 meaning: A or B only.
        var v1 = (ItemEnqueued)serializer.FromBinary(System.Text.Encoding.UTF8.GetBytes(
            """{"item":{"id":"c1","kind":"compare","prompt":"p","completions":[{"id":"a","text":"x"},{"id":"b","text":"y"}],"ratersNeeded":1,"timeoutMs":60000,"fallback":"drop","origin":null},"atMs":5}"""),
            "ItemEnqueued");
        Assert.Equal((0, false, RationalePolicy.Optional, 0), (v1.Item.Verdicts.Count, v1.Item.AskStrength, v1.Item.Rationale, v1.Item.Criteria.Count));
        var e = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary("{}"u8.ToArray(), "RatingRecorded@3"));
        Assert.Contains("schema 3 was written by a newer RLFT", e.Message);
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary("{}"u8.ToArray(), "RatingRecorded@x"));
    }

    [Fact]
    public void Every_feedback_message_round_trips_through_the_bound_serializer()
    {
        using var system = ActorSystem.Create("ser", ConfigurationFactory.ParseString(FeedbackSerializer.Hocon));
        var probe = system.ActorOf(Props.Empty, "probe");
        foreach (var message in Samples(probe))
        {
            var serializer = system.Serialization.FindSerializerFor(message);
            Assert.IsType<FeedbackSerializer>(serializer);
            var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
            var back = system.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
            Assert.Equal(message.GetType(), back.GetType());
            Assert.Equal(System.Text.Encoding.UTF8.GetString(serializer.ToBinary(message)), System.Text.Encoding.UTF8.GetString(serializer.ToBinary(back)));
        }
        var feedback = (FeedbackSerializer)system.Serialization.FindSerializerFor(new SubscribeResolutions(probe, 0));
        var sub = (SubscribeResolutions)feedback.FromBinary(feedback.ToBinary(new SubscribeResolutions(probe, 0)), nameof(SubscribeResolutions));
        Assert.Equal(probe, sub.Subscriber);
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => new FeedbackSerializer((ExtendedActorSystem)system).FromBinary([], "Bogus"));
        Assert.Equal(Samples(probe).Count(), Messages().Count);
    }

    [Fact]
    public async Task Journal_rows_in_the_sqlite_file_use_the_feedback_serializer()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("c1", "p", "x", "y")], Ct);
        await using var connection = new SqliteConnection($"Data Source={node.Options.Journal};Mode=ReadOnly");
        await connection.OpenAsync(Ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT identifier, manifest FROM journal";
        await using var reader = await command.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        // Journal rows name their event schema version (a bare name is schema 1, written before versions existed).
        Assert.Equal((FeedbackSerializer.Id, $"ItemEnqueued@{FeedbackSchema.Current}"), (reader.GetInt32(0), reader.GetString(1)));
    }

    sealed record Unbound(string X);

    [Fact]
    public async Task The_node_refuses_to_serialize_an_unbound_type()
    {
        await using var node = await FeedbackTestNode.StartAsync();
        var system = node.Services.GetRequiredService<ActorSystem>();
        Assert.IsType<FeedbackSerializer>(system.Serialization.FindSerializerFor(GetStats.Instance));
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => system.Serialization.FindSerializerFor(new Unbound("x")));
    }
}
