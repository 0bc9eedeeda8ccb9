using System.Text.Json;
using System.Text.Json.Nodes;
using HfNative = Tokenizers.DotNet.Tokenizer;

namespace Rlft.Policy.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> run by the Rust tokenizers library (Tokenizers.DotNet): pre-tokenizer,
/// model, post-processor and decoder all come from the file. EOS/PAD/BOS ids are resolved from
/// tokenizer_config.json and config.json when present, else from the file's special tokens.
/// </summary>
public sealed class HfTokenizer : ITokenizer, IDisposable
{
    readonly HfNative native;
    readonly object gate = new();

    public int EosId { get; }
    public int PadId { get; }
    public int? BosId { get; }
    public int VocabSize { get; }
    /// <summary>Special (added) tokens by content.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    HfTokenizer(HfNative native, int eos, int pad, int? bos, int vocabSize, IReadOnlyDictionary<string, int> specials)
    {
        this.native = native; EosId = eos; PadId = pad; BosId = bos; VocabSize = vocabSize; SpecialTokens = specials;
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

        int eos = Named("eos_token") ?? FromConfig("eos_token_id") ?? First("<|endoftext|>", "</s>", "<|end_of_text|>", "<|im_end|>")
                  ?? throw new InvalidDataException($"{file}: no EOS token (set eos_token in tokenizer_config.json or add <|endoftext|>)");
        int pad = Named("pad_token") ?? FromConfig("pad_token_id") ?? First("<|pad|>", "<pad>", "<|finetune_right_pad_id|>") ?? eos;
        int? bos = BosFromPostProcessor(json["post_processor"], specials);

        var native = new HfNative(file);
        return new HfTokenizer(native, eos, pad, bos, maxId + 1, specials);
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

    public int[] Encode(string text)
    {
        uint[] ids;
        lock (gate) ids = native.Encode(text);
        return Array.ConvertAll(ids, i => (int)i);
    }

    public string Decode(IReadOnlyList<int> ids)
    {
        var arr = new uint[ids.Count];
        for (int i = 0; i < arr.Length; i++) arr[i] = (uint)ids[i];
        lock (gate) return native.Decode(arr);
    }

    public void Dispose() => native.Dispose();
}
