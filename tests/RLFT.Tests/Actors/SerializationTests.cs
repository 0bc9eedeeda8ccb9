using System.Runtime.Serialization;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Rlft.Actors.Configuration;
using Rlft.Actors.Protocol;
using Rlft.Actors.Serialization;

namespace Rlft.Tests.Actors;

public sealed class SerializationTests : IDisposable
{
    readonly ActorSystem _system = ActorSystem.Create("ser",
        ConfigurationFactory.ParseString("akka.actor.provider = local").WithFallback(RlftConfig.BaseAkka().Config));

    public void Dispose() => _system.Terminate().Wait(TimeSpan.FromSeconds(10));

    object RoundTrip(object message)
    {
        var serializer = _system.Serialization.FindSerializerFor(message);
        Assert.IsType<RlftSerializer>(serializer);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        return _system.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
    }

    static string Canonical(object o) => JsonSerializer.Serialize(o, o.GetType(), new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });

    static RolloutBatch Batch() => new(42, 2, 7, "worker-a",
        [
            new RolloutSample("review the movie:", null, 0, " the movie was great.", [1, 2, 3], [4, 5], [-0.5f, -1.25f], true),
            new RolloutSample("add 1 and 2:", "3", 1, " 3.", [9], [10, 11, 12], [-0.1f, float.NegativeInfinity, -2f], false),
            // A conversational sample: the rendered prompt and the conversation itself.
            new RolloutSample("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", null, 2, "Hello.", [7, 8], [9, 3], [-1f, -0.5f], true,
                [new("system", "Be brief — ünï."), new("user", "Hi")]),
        ], 1.5);

    public static TheoryData<object> Messages() =>
    [
        Batch(),
        new GenerateRollouts(3, 1, 9, [new PromptItem("p", "a", 0), new PromptItem("q", null, 0)], new SamplingSettings(16, 1.0, 0, 1.0), 1234),
        // Conversational prompts, and the stage's chat template override travelling with the batch.
        new GenerateRollouts(4, 1, 9, [new PromptItem("", "5", 0, [new("user", "add 2 and 3:")]), new PromptItem("plain", null, 1)],
            new SamplingSettings(16, 1.0, 0, 1.0, "{% for m in messages %}{{ m.content }}{% endfor %}"), 1234),
        new ScoredBatch(42, [0.5f, 1f], ["task", "length"], [[0.5f, 1f], [0f, 0f]], [1], ["nan"], 0.01),
        new ScoreBatch(42, 3, Batch()),
        new TrainOn(42, 2, Batch(), new ScoredBatch(42, [0.5f, 1f], ["task"], [[0.5f, 1f]], [], [], 0)),
        new WeightChunk(WeightKind.Policy, 5, 1, 3, [1, 2, 3, 255], [9, 9]),
        new RequestWork("w", 3),
        new WeightsPublished(WeightKind.RewardModel, 2, 4, 4_000_000, "ABCD", true, 1),
        new QueryWeights(WeightKind.Policy, 7),
        new QueryWeights(WeightKind.Policy, -1, AcceptsLocal: true),
        new LocalWeightsReady(WeightKind.Policy, 9, true, 4),
        new PolicyUpdated(42, 2, 10, 8, new Dictionary<string, double> { ["loss/policy"] = 0.25 }),
        new JobStatus(1, "ppo", 3, 10, 4, false, 3, 1, 0, new Dictionary<string, long> { ["a"] = 2 }, new Dictionary<string, double>()),
        QueryJobStatus.Instance,
        new JoinFederation("client@10.0.0.7:4060"),
        new FederatedRoundRequest(1, 3, 0, [0.5f, -1f, float.Epsilon], 0.75),
        new FederatedRoundRequest(1, 3, 2, [1f], 0, Secure: true),
        new FederatedRoundKey("client-2", 1, 3, 2, [48, 89, 0, 255], 41),
        new FederatedRoundFailed("client-2", 1, 3, 2, "secure aggregation: element 7 of the update is NaN"),
        new FederatedRoundPeers(1, 3, 2, new Dictionary<string, byte[]> { ["client-1"] = [1, 2], ["client-2"] = [48, 89, 0, 255] }, 63),
        new FederatedRoundUpdate("client-2", 1, 3, 1, [0.25f, -2f], [long.MinValue, 7], 41, new Dictionary<string, double> { ["inner/loss_last"] = 1.5 }),
    ];

    [Theory]
    [MemberData(nameof(Messages))]
    public void Every_message_round_trips_through_the_bound_serializer(object message)
    {
        var back = RoundTrip(message);
        Assert.Equal(message.GetType(), back.GetType());
        Assert.Equal(Canonical(message), Canonical(back));
    }

    [Fact]
    public void An_unknown_manifest_is_a_serialization_exception()
    {
        var s = new RlftSerializer((ExtendedActorSystem)_system);
        Assert.Throws<SerializationException>(() => s.FromBinary([1, 2, 3], "NoSuchMessage"));
    }

    [Fact]
    public void A_truncated_bulk_payload_is_refused_not_misread()
    {
        var s = new RlftSerializer((ExtendedActorSystem)_system);
        var bytes = s.ToBinary(Batch());
        Assert.Throws<FormatException>(() => s.FromBinary(bytes[..^3], nameof(RolloutBatch)));
        Assert.Throws<FormatException>(() => s.FromBinary([.. bytes, 0], nameof(RolloutBatch)));
    }

    [Fact]
    public void A_type_without_the_marker_cannot_be_sent_with_strict_serialization()
    {
        Assert.ThrowsAny<Exception>(() => _system.Serialization.FindSerializerFor(new Uri("http://x")).ToBinary(new Uri("http://x")));
    }
}
