using System.Runtime.Serialization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace Rlft.Actors.Feedback;

/// <summary>
/// System.Text.Json for the feedback protocol and its journal events. The manifest is the short type name, so
/// stored events do not depend on assembly names; an unknown manifest is a <see cref="SerializationException"/>
/// (Akka then drops just that message). Feedback payloads are small text, so JSON costs nothing that matters
/// here and keeps the journal readable with sqlite3. Journal events and snapshots carry their schema version in the
/// manifest (<see cref="FeedbackSchema"/>): <c>RatingRecorded@2</c>; a bare name is schema 1, read through its upcast.
/// </summary>
internal sealed class FeedbackSerializer : SerializerWithStringManifest
{
    public const int Id = 801;

    /// <summary>The HOCON that binds <see cref="IFeedbackMessage"/> to this serializer.</summary>
    public const string Hocon = """
        akka.actor {
          serializers.rlft-feedback = "Rlft.Actors.Feedback.FeedbackSerializer, Rlft.Actors"
          serialization-bindings { "Rlft.Actors.Feedback.IFeedbackMessage, Rlft.Actors" = rlft-feedback }
          serialization-identifiers { "Rlft.Actors.Feedback.FeedbackSerializer, Rlft.Actors" = 801 }
        }
        """;

    static readonly Type[] Types =
    [
        typeof(EnqueueItems), typeof(ItemsEnqueued), typeof(EnqueueRejected),
        typeof(NextTask), typeof(TaskOffer), typeof(NoTask),
        typeof(SubmitRating), typeof(RatingAccepted), typeof(RatingRejected),
        typeof(GetStats), typeof(FeedbackStats), typeof(GetRaterStats), typeof(RaterStats),
        typeof(GetItemRatings), typeof(ItemRatings), typeof(GetExport), typeof(ExportData),
        typeof(SubscribeResolutions), typeof(ItemResolved), typeof(FeedbackTick),
        typeof(ItemEnqueued), typeof(LeaseGranted), typeof(RatingRecorded), typeof(ItemClosed),
        typeof(FeedbackSnapshot),
        // schema 2
        typeof(SetAsideTask), typeof(TaskSetAside), typeof(ItemSetAside), typeof(UndoRating), typeof(UndoAccepted), typeof(RatingUndone),
        typeof(DiscardItem), typeof(ItemDiscarded), typeof(SetGuideline), typeof(GuidelineStored), typeof(GuidelineSet),
        typeof(GetGuidelines), typeof(GuidelineList), typeof(ChangeRater), typeof(RaterChanged), typeof(RaterAdded),
        typeof(RaterTokenIssued), typeof(RaterRevoked), typeof(GetRaterProgress), typeof(RaterProgress), typeof(GetOverview),
        typeof(FeedbackOverview),
    ];

    static readonly Dictionary<string, Type> ByManifest = Types.ToDictionary(t => t.Name, StringComparer.Ordinal);

    readonly JsonSerializerOptions _options;

    public FeedbackSerializer(ExtendedActorSystem system) : base(system)
    {
        _options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase), new ActorRefConverter(system) },
        };
    }

    public override int Identifier => Id;

    public override string Manifest(object o) =>
        !ByManifest.ContainsKey(o.GetType().Name) ? throw new ArgumentException($"{o.GetType().FullName} is not a feedback message")
            : FeedbackSchema.IsVersioned(o) ? $"{o.GetType().Name}@{FeedbackSchema.Current}"
            : o.GetType().Name;

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), _options);

    public override object FromBinary(byte[] bytes, string manifest)
    {
        var (name, version) = FeedbackSchema.Parse(manifest);
        if (!ByManifest.TryGetValue(name, out var type)) throw new SerializationException($"unknown feedback manifest '{manifest}'");
        var value = JsonSerializer.Deserialize(bytes, type, _options) ?? throw new SerializationException($"empty {manifest}");
        return FeedbackSchema.IsVersioned(value) ? FeedbackSchema.Upcast(value, version) : value;
    }

    /// <summary>Actor refs travel as their serialized path and resolve through the provider on arrival.</summary>
    sealed class ActorRefConverter(ExtendedActorSystem system) : JsonConverter<IActorRef>
    {
        public override bool CanConvert(Type typeToConvert) => typeof(IActorRef).IsAssignableFrom(typeToConvert);

        public override IActorRef Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.GetString() is { } path ? system.Provider.ResolveActorRef(path) : ActorRefs.Nobody;

        public override void Write(Utf8JsonWriter writer, IActorRef value, JsonSerializerOptions options) =>
            writer.WriteStringValue(Akka.Serialization.Serialization.SerializedActorPath(value));
    }
}
