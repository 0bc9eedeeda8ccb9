using System.Runtime.Serialization;
using System.Text.Json;
using Akka.Actor;
using Akka.Serialization;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;

namespace Rlft.Actors.Serialization;

/// <summary>
/// The wire format of every <see cref="IRlftMessage"/>. Bulk messages (rollouts, scores, experience,
/// weight chunks) use a compact binary layout with arrays copied as blocks; small control messages use
/// System.Text.Json. The manifest is the message's type name; an unknown manifest raises
/// <see cref="SerializationException"/>, which drops that message only.
/// </summary>
internal sealed class RlftSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 1701;
    public override int Identifier => Id;

    static readonly Dictionary<string, Type> Types = typeof(IRlftMessage).Assembly.GetTypes()
        .Where(t => typeof(IRlftMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
        .ToDictionary(t => t.Name);

    static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public override string Manifest(object o) => o.GetType().Name;

    public override byte[] ToBinary(object obj) => obj switch
    {
        RolloutBatch m => Bulk(w => Codecs.Write(w, m)),
        GenerateRollouts m => Bulk(w => Codecs.Write(w, m)),
        ScoredBatch m => Bulk(w => Codecs.Write(w, m)),
        ScoreBatch m => Bulk(w => { w.Write(m.BatchId); w.Write(m.RewardModelVersion); Codecs.Write(w, m.Batch); }),
        TrainOn m => Bulk(w => { w.Write(m.BatchId); w.Write(m.Stage); Codecs.Write(w, m.Batch); Codecs.Write(w, m.Scores); }),
        WeightChunk m => Bulk(w => { w.Write((int)m.Kind); w.Write(m.Version); w.Write(m.Index); w.Write(m.Count); w.Write(m.Data); w.Write(m.Sha256); }),
        FederatedRoundRequest m => Bulk(w => { w.Write(m.Stage); w.Write(m.Round); w.Write(m.Attempt); w.Write(m.Global); w.Write(m.ClipNorm); w.Write(m.Secure); }),
        FederatedRoundUpdate m => Bulk(w =>
        {
            w.Write(m.ClientId); w.Write(m.Stage); w.Write(m.Round); w.Write(m.Attempt);
            w.Write(m.Delta); w.Write(m.Masked); w.Write(m.Samples); w.Write(m.Metrics);
        }),
        IRlftMessage m => JsonSerializer.SerializeToUtf8Bytes(m, m.GetType(), Json),
        _ => throw new ArgumentException($"RlftSerializer cannot serialize {obj.GetType().FullName}: not an IRlftMessage"),
    };

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!Types.TryGetValue(manifest, out var type))
            throw new SerializationException($"unknown RLFT message manifest '{manifest}'");
        var r = new WireReader(bytes);
        object result = manifest switch
        {
            nameof(RolloutBatch) => Codecs.ReadRolloutBatch(r),
            nameof(GenerateRollouts) => Codecs.ReadGenerateRollouts(r),
            nameof(ScoredBatch) => Codecs.ReadScoredBatch(r),
            nameof(ScoreBatch) => new ScoreBatch(r.Long(), r.Long(), Codecs.ReadRolloutBatch(r)),
            nameof(TrainOn) => new TrainOn(r.Long(), r.Int(), Codecs.ReadRolloutBatch(r), Codecs.ReadScoredBatch(r)),
            nameof(WeightChunk) => new WeightChunk((WeightKind)r.Int(), r.Long(), r.Int(), r.Int(), r.Bytes(), r.Bytes()),
            nameof(FederatedRoundRequest) => new FederatedRoundRequest(r.Int(), r.Int(), r.Int(), r.Floats(), r.Double(), r.Bool()),
            nameof(FederatedRoundUpdate) => new FederatedRoundUpdate(r.Str(), r.Int(), r.Int(), r.Int(), r.Floats(), r.Longs(), r.Double(), r.Dict()),
            _ => JsonSerializer.Deserialize(bytes, type, Json) ?? throw new SerializationException($"empty {manifest}"),
        };
        if (result is RolloutBatch or GenerateRollouts or ScoredBatch or ScoreBatch or TrainOn or WeightChunk or FederatedRoundRequest or FederatedRoundUpdate) r.End();
        return result;
    }

    static byte[] Bulk(Action<WireWriter> write)
    {
        using var w = new WireWriter();
        write(w);
        return w.ToArray();
    }
}

internal static class Codecs
{
    public static void Write(WireWriter w, RolloutBatch m)
    {
        w.Write(m.BatchId); w.Write(m.Stage); w.Write(m.PolicyVersion); w.Write(m.WorkerId); w.Write(m.Seconds);
        w.Write(m.Samples, (w, s) =>
        {
            w.Write(s.Prompt); w.WriteNullable(s.Answer); w.Write(s.Group); w.Write(s.Completion);
            w.Write(s.PromptTokens); w.Write(s.CompletionTokens); w.Write(s.Logprobs); w.Write(s.Finished);
            WriteMessages(w, s.Messages);
        });
    }

    public static RolloutBatch ReadRolloutBatch(WireReader r)
    {
        long batch = r.Long(); int stage = r.Int(); long version = r.Long(); string worker = r.Str(); double seconds = r.Double();
        var samples = r.Array(r => new RolloutSample(r.Str(), r.NullableStr(), r.Int(), r.Str(), r.Ints(), r.Ints(), r.Floats(), r.Bool(), ReadMessages(r)));
        return new RolloutBatch(batch, stage, version, worker, samples, seconds);
    }

    public static void Write(WireWriter w, GenerateRollouts m)
    {
        w.Write(m.BatchId); w.Write(m.Stage); w.Write(m.PolicyVersion); w.Write(m.Seed);
        w.Write(m.Sampling.MaxNewTokens); w.Write(m.Sampling.Temperature); w.Write(m.Sampling.TopK); w.Write(m.Sampling.TopP);
        w.WriteNullable(m.Sampling.ChatTemplate);
        w.Write(m.Prompts, (w, p) => { w.Write(p.Prompt); w.WriteNullable(p.Answer); w.Write(p.Group); WriteMessages(w, p.Messages); });
    }

    public static GenerateRollouts ReadGenerateRollouts(WireReader r)
    {
        long batch = r.Long(); int stage = r.Int(); long version = r.Long(); long seed = r.Long();
        var sampling = new SamplingSettings(r.Int(), r.Double(), r.Int(), r.Double(), r.NullableStr());
        var prompts = r.Array(r => new PromptItem(r.Str(), r.NullableStr(), r.Int(), ReadMessages(r)));
        return new GenerateRollouts(batch, stage, version, prompts, sampling, seed);
    }

    /// <summary>A conversation, or none: a presence flag, then (role, content) pairs.</summary>
    static void WriteMessages(WireWriter w, ChatMessage[]? messages)
    {
        w.Write(messages is not null);
        if (messages is not null) w.Write(messages, (w, m) => { w.Write(m.Role); w.Write(m.Content); });
    }

    static ChatMessage[]? ReadMessages(WireReader r) => r.Bool() ? r.Array(r => new ChatMessage(r.Str(), r.Str())) : null;

    public static void Write(WireWriter w, ScoredBatch m)
    {
        w.Write(m.BatchId); w.Write(m.Scores); w.Write(m.ComponentNames);
        w.Write(m.Components, (w, c) => w.Write(c));
        w.Write(m.Dropped); w.Write(m.DropReasons); w.Write(m.Seconds);
    }

    public static ScoredBatch ReadScoredBatch(WireReader r) =>
        new(r.Long(), r.Floats(), r.Strings(), r.Array(r => r.Floats()), r.Ints(), r.Strings(), r.Double());
}
