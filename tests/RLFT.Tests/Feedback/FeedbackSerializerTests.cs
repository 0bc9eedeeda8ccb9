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
        new FeedbackSnapshot([new SnapshotItem(Item, 1, new Dictionary<string, long> { ["alice"] = 9 }, ["alice"])], [Rating],
            [new ItemResolved(1, "i1", null, ResolutionOutcome.Rated, null, "2 of 2", [Rating], 5)], new Dictionary<string, string> { ["alice"] = "i1" }),
    ];

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
        Assert.Equal((FeedbackSerializer.Id, "ItemEnqueued"), (reader.GetInt32(0), reader.GetString(1)));
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
