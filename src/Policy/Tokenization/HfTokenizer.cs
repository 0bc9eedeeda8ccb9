using System.Text.Json;
using System.Text.Json.Nodes;
using HfNative = Tokenizers.DotNet.Tokenizer;

namespace Rlft.Policy.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> run by the Rust tokenizers library (Tokenizers.DotNet): pre-tokenizer,
/// model, post-processor and decoder all come from the file. EOS/PAD/BOS ids are resolved from
/// tokenizer_config.json and config.json when present, else from the file's special tokens.
/// </summary>
/// <remarks>
/// Tokenizers.DotNet 1.4.1 always encodes with <c>add_special_tokens=true</c> (and applies the file's truncation and
/// padding). Encoding without special tokens — what <c>apply_chat_template(tokenize=True)</c> and joint
/// prompt+completion encoding need — runs a second native instance loaded from a copy of the file whose
/// <c>post_processor</c>, <c>truncation</c> and <c>padding</c> are removed; everything else (normalizer,
/// pre-tokenizer, model, added tokens) is the same, so the ids are those of the same text.
/// </remarks>
public sealed class HfTokenizer : ITokenizer, IDisposable
{
    readonly HfNative native;
    readonly HfNative raw;
    readonly object gate = new();
    int[]? prefix;

    public int EosId { get; }
    public int PadId { get; }
    public int? BosId { get; }
    public int VocabSize { get; }
    /// <summary>Special (added) tokens by content.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    HfTokenizer(HfNative native, HfNative raw, int eos, int pad, int? bos, int vocabSize, IReadOnlyDictionary<string, int> specials)
    {
        this.native = native; this.raw = raw; EosId = eos; PadId = pad; BosId = bos; VocabSize = vocabSize; SpecialTokens = specials;
    }

    /// <summary>Loads <c>tokenizer.json</c> from a model directory (or the file itself).</summary>
    public static HfTokenizer Load(string pathOrDir)
    {
        string file = Directory.Exists(pathOrDir) ? Path.Combine(pathOrDir, "tokenizer.json") : pathOrDir;
        string dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        if (!File.Exists(file)) throw new FileNotFoundException($"tokenizer not found: {file}", file);
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new InvalidDataException($"{file}: expected a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: invalid JSON ({e.Message})", e); }

        var specials = new Dictionary<string, int>();
        int maxId = -1;
        if (json["added_tokens"] is JsonArray added)
            foreach (var t in added.OfType<JsonObject>())
            {
                int id = t["id"]!.GetValue<int>();
                maxId = Math.Max(maxId, id);
                if (t["special"]?.GetValue<bool>() ?? false) specials[t["content"]!.GetValue<string>()] = id;
            }
        if (json["model"]?["vocab"] is JsonObject vocab)
            foreach (var kv in vocab) maxId = Math.Max(maxId, kv.Value!.GetValue<int>());

        var tokCfg = ReadObject(Path.Combine(dir, "tokenizer_config.json"));
        var modelCfg = ReadObject(Path.Combine(dir, "config.json"));
        int? Named(string key)
        {
            var node = tokCfg?[key];
            string? content = node is JsonObject o ? o["content"]?.GetValue<string>() : node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            return content is not null && specials.TryGetValue(content, out int id) ? id : null;
        }
        int? FromConfig(string key) => modelCfg?[key] is JsonValue v && v.TryGetValue<int>(out int id) ? id : modelCfg?[key] is JsonArray a && a.Count > 0 ? a[0]!.GetValue<int>() : null;
        int? First(params string[] names) { foreach (var n in names) if (specials.TryGetValue(n, out int id)) return id; return null; }

        int eos = Named("eos_token") ?? FromConfig("eos_token_id") ?? First("<|endoftext|>", "</s>", "<|end_of_text|>", "<|im_end|>", "[SEP]")
                  ?? throw new InvalidDataException($"{file}: no EOS token (set eos_token in tokenizer_config.json or add <|endoftext|>)");
        int pad = Named("pad_token") ?? FromConfig("pad_token_id") ?? First("<|pad|>", "<pad>", "<|finetune_right_pad_id|>", "[PAD]") ?? eos;
        int? bos = BosFromPostProcessor(json["post_processor"], specials);

        var native = new HfNative(file);
        return new HfTokenizer(native, LoadWithoutPostProcessor(json), eos, pad, bos, maxId + 1, specials);
    }

    /// <summary>A native instance of the same tokenizer without post-processor, truncation and padding.</summary>
    static HfNative LoadWithoutPostProcessor(JsonObject json)
    {
        var copy = (JsonObject)json.DeepClone();
        copy["post_processor"] = null;
        copy["truncation"] = null;
        copy["padding"] = null;
        string tmp = Path.Combine(Path.GetTempPath(), $"rlft-tokenizer-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(tmp, copy.ToJsonString());
            return new HfNative(tmp);
        }
        finally { File.Delete(tmp); }
    }

    /// <summary>The id a TemplateProcessing post-processor puts before single sequences, if any.</summary>
    static int? BosFromPostProcessor(JsonNode? pp, Dictionary<string, int> specials)
    {
        if (pp is not JsonObject o) return null;
        string? type = o["type"]?.GetValue<string>();
        if (type == "Sequence" && o["processors"] is JsonArray list)
            return list.Select(p => BosFromPostProcessor(p, specials)).FirstOrDefault(id => id is not null);
        if (type != "TemplateProcessing" || o["single"] is not JsonArray single || single.Count == 0) return null;
        string? first = single[0]?["SpecialToken"]?["id"]?.GetValue<string>();
        if (first is null) return null;
        if (o["special_tokens"]?[first]?["ids"] is JsonArray ids && ids.Count > 0) return ids[0]!.GetValue<int>();
        return specials.TryGetValue(first, out int id) ? id : null;
    }

    static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON ({e.Message})", e); }
    }

    public int[] Encode(string text) => Encode(text, addSpecialTokens: true);

    public int[] Encode(string text, bool addSpecialTokens)
    {
        uint[] ids;
        lock (gate) ids = (addSpecialTokens ? native : raw).Encode(text);
        return Array.ConvertAll(ids, i => (int)i);
    }

    /// <summary>
    /// What the post-processor puts before a single sequence, found by encoding a probe with and without special
    /// tokens (so any post-processor type is covered, not only TemplateProcessing).
    /// </summary>
    public IReadOnlyList<int> PrefixIds => prefix ??= FindPrefix();

    int[] FindPrefix()
    {
        foreach (var probe in new[] { "Hello world", "a", "0" })
        {
            int[] full = Encode(probe, true), bare = Encode(probe, false);
            if (bare.Length == 0) continue;
            for (int i = 0; i + bare.Length <= full.Length; i++)
                if (full.AsSpan(i, bare.Length).SequenceEqual(bare)) return full[..i];
        }
        return BosId is int bos ? [bos] : [];
    }

    public string DecodeWithSpecialTokens(IReadOnlyList<int> ids)
    {
        var byId = SpecialTokens.ToDictionary(kv => kv.Value, kv => kv.Key);
        var sb = new System.Text.StringBuilder();
        var run = new List<int>();
        void Flush() { if (run.Count > 0) { sb.Append(Decode(run)); run.Clear(); } }
        foreach (int id in ids)
        {
            if (byId.TryGetValue(id, out var content)) { Flush(); sb.Append(content); }
            else run.Add(id);
        }
        Flush();
        return sb.ToString();
    }

    public string Decode(IReadOnlyList<int> ids)
    {
        var arr = new uint[ids.Count];
        for (int i = 0; i < arr.Length; i++) arr[i] = (uint)ids[i];
        lock (gate) return native.Decode(arr);
    }

    public void Dispose()
    {
        native.Dispose();
        raw.Dispose();
    }
}
