using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Tokenization;

/// <summary>
/// How a <c>tokenizer.json</c>'s post-processor wraps one sequence or a pair with special tokens and token type ids,
/// as the Rust tokenizers library does: <c>TemplateProcessing</c> (its <c>single</c> and <c>pair</c> templates),
/// <c>BertProcessing</c> (<c>[CLS] A [SEP]</c>, <c>[CLS] A [SEP] B [SEP]</c> with B's part type 1), <c>RobertaProcessing</c>
/// (<c>&lt;s&gt; A &lt;/s&gt;</c>, <c>&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;</c>, every type 0), inside a <c>Sequence</c> or alone;
/// no post-processor: A (type 0) then B (type 1). Tokenizers.DotNet encodes single texts only, so pairs are
/// assembled here from the two texts encoded without special tokens — which is what the library does too: each
/// sequence is pre-tokenized and modelled on its own, then the template joins them.
/// </summary>
internal sealed class PairTemplate
{
    /// <summary>One template piece: a special token's ids, or the sequence A (0) or B (1), with its type id.</summary>
    public sealed record Piece(int[]? SpecialIds, int Sequence, int TypeId);

    public IReadOnlyList<Piece> Single { get; }
    public IReadOnlyList<Piece> Pair { get; }

    PairTemplate(IReadOnlyList<Piece> single, IReadOnlyList<Piece> pair) => (Single, Pair) = (single, pair);

    /// <summary>Special tokens the template adds around one sequence (<paramref name="pair"/> false) or a pair.</summary>
    public int Added(bool pair) => (pair ? Pair : Single).Where(p => p.SpecialIds is not null).Sum(p => p.SpecialIds!.Length);

    /// <summary>Ids and token type ids of A (and B) wrapped by the template; SequenceIds hold −1 for special tokens, else 0 or 1.</summary>
    public (int[] Ids, int[] TypeIds, int[] SequenceIds) Apply(IReadOnlyList<int> a, IReadOnlyList<int>? b)
    {
        var ids = new List<int>(a.Count + (b?.Count ?? 0) + 4);
        var types = new List<int>(ids.Capacity);
        var seqs = new List<int>(ids.Capacity);
        foreach (var piece in b is null ? Single : Pair)
        {
            IReadOnlyList<int> part = piece.SpecialIds ?? (piece.Sequence == 0 ? a : b!);
            ids.AddRange(part);
            for (int i = 0; i < part.Count; i++) { types.Add(piece.TypeId); seqs.Add(piece.SpecialIds is null ? piece.Sequence : -1); }
        }
        return (ids.ToArray(), types.ToArray(), seqs.ToArray());
    }

    public static PairTemplate FromFile(string tokenizerJson)
    {
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(tokenizerJson)) as JsonObject ?? throw new InvalidDataException($"{tokenizerJson}: expected a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{tokenizerJson}: invalid JSON ({e.Message})", e); }
        try { return Parse(json["post_processor"]); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{tokenizerJson}: post_processor: {e.Message}", e); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
        { throw new InvalidDataException($"{tokenizerJson}: post_processor: malformed ({e.Message})", e); }
    }

    public static PairTemplate Parse(JsonNode? pp)
    {
        static Piece Seq(int s, int type) => new(null, s, type);
        if (pp is null) return new([Seq(0, 0)], [Seq(0, 0), Seq(1, 1)]);
        string type = pp["type"]?.GetValue<string>() ?? throw new InvalidDataException("no 'type'");
        switch (type)
        {
            case "Sequence":
                // Byte-level processing inside a Sequence only trims offsets; the template-making processor decides the ids.
                var makers = (pp["processors"] as JsonArray ?? []).Where(p => p?["type"]?.GetValue<string>() is "TemplateProcessing" or "BertProcessing" or "RobertaProcessing" or "Sequence").ToList();
                if (makers.Count > 1) throw new InvalidDataException("a Sequence with more than one template-making processor is not supported");
                return Parse(makers.FirstOrDefault());
            case "ByteLevel":
                return Parse(null);
            case "BertProcessing":
            {
                int[] cls = [SpecialId(pp["cls"])], sep = [SpecialId(pp["sep"])];
                return new([new(cls, -1, 0), Seq(0, 0), new(sep, -1, 0)],
                           [new(cls, -1, 0), Seq(0, 0), new(sep, -1, 0), Seq(1, 1), new(sep, -1, 1)]);
            }
            case "RobertaProcessing":
            {
                int[] cls = [SpecialId(pp["cls"])], sep = [SpecialId(pp["sep"])];
                return new([new(cls, -1, 0), Seq(0, 0), new(sep, -1, 0)],
                           [new(cls, -1, 0), Seq(0, 0), new(sep, -1, 0), new(sep, -1, 0), Seq(1, 0), new(sep, -1, 0)]);
            }
            case "TemplateProcessing":
            {
                var specials = new Dictionary<string, int[]>();
                if (pp["special_tokens"] is JsonObject st)
                    foreach (var (name, node) in st)
                        specials[name] = (node?["ids"] as JsonArray ?? throw new InvalidDataException($"special_tokens.{name} has no 'ids'")).Select(x => x!.GetValue<int>()).ToArray();
                List<Piece> Template(string key) => (pp[key] as JsonArray ?? throw new InvalidDataException($"no '{key}' template")).Select(item =>
                {
                    if (item?["Sequence"] is JsonObject s)
                    {
                        string id = s["id"]!.GetValue<string>();
                        return Seq(id == "A" ? 0 : id == "B" ? 1 : throw new InvalidDataException($"{key}: sequence '{id}' is not A or B"), s["type_id"]?.GetValue<int>() ?? 0);
                    }
                    if (item?["SpecialToken"] is JsonObject t)
                    {
                        string id = t["id"]!.GetValue<string>();
                        return new Piece(specials.TryGetValue(id, out var ids) ? ids : throw new InvalidDataException($"{key}: special token '{id}' is not in special_tokens"), -1, t["type_id"]?.GetValue<int>() ?? 0);
                    }
                    throw new InvalidDataException($"{key}: unknown template piece {item?.ToJsonString()}");
                }).ToList();
                return new(Template("single"), Template("pair"));
            }
            default:
                throw new InvalidDataException($"type '{type}' is not supported (TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)");
        }
    }

    static int SpecialId(JsonNode? node) =>
        node is JsonArray { Count: 2 } a ? a[1]!.GetValue<int>() : throw new InvalidDataException($"expected [\"token\", id], got {node?.ToJsonString() ?? "nothing"}");
}
