using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Tokenization;

/// <summary>
/// The <c>tokenizer.json</c> that transformers' convert_slow_tokenizer builds for an encoder checkpoint that ships only
/// the "slow" files: BERT/DistilBERT's <c>vocab.txt</c> (BertConverter: BertNormalizer with the tokenizer_config's
/// do_lower_case / strip_accents / tokenize_chinese_chars, BertPreTokenizer, WordPiece, <c>[CLS] A [SEP] B [SEP]</c>
/// with B's part type 1) and RoBERTa's <c>vocab.json</c> + <c>merges.txt</c> (RobertaConverter: byte-level BPE with
/// RobertaProcessing). Many fine-tuned BERT-family checkpoints on the Hub have no tokenizer.json.
/// </summary>
internal static class SlowTokenizerFiles
{
    /// <summary>
    /// The tokenizer.json to read for <paramref name="dir"/>: its own when present, else one converted from the slow
    /// files into a cache folder under the temp directory (with tokenizer_config.json and config.json beside it, so
    /// special tokens resolve as in the model directory). Null when neither exists.
    /// </summary>
    public static string? Resolve(string dir)
    {
        string own = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(own)) return own;
        var json = Convert(dir);
        if (json is null) return null;
        string text = json.ToJsonString();
        string hash = System.Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..16];
        string cache = Path.Combine(Path.GetTempPath(), "rlft-converted-tokenizers", hash);
        Directory.CreateDirectory(cache);
        foreach (var f in new[] { "tokenizer_config.json", "config.json", "special_tokens_map.json" })
            if (File.Exists(Path.Combine(dir, f))) File.Copy(Path.Combine(dir, f), Path.Combine(cache, f), overwrite: true);
        string file = Path.Combine(cache, "tokenizer.json");
        File.WriteAllText(file + ".tmp", text);
        File.Move(file + ".tmp", file, overwrite: true);
        return file;
    }

    /// <summary>The converted tokenizer.json of <paramref name="dir"/>'s slow files; null when it has none.</summary>
    public static JsonObject? Convert(string dir)
    {
        var config = ReadObject(Path.Combine(dir, "tokenizer_config.json")) ?? new JsonObject();
        var specialsMap = ReadObject(Path.Combine(dir, "special_tokens_map.json")) ?? new JsonObject();
        string Token(string key, string fallback) =>
            TokenText(config[key]) ?? TokenText(specialsMap[key]) ?? fallback;
        string vocabTxt = Path.Combine(dir, "vocab.txt"), vocabJson = Path.Combine(dir, "vocab.json"), mergesTxt = Path.Combine(dir, "merges.txt");
        if (File.Exists(vocabTxt)) return WordPiece(vocabTxt, config, Token("cls_token", "[CLS]"), Token("sep_token", "[SEP]"), Token("unk_token", "[UNK]"),
            [Token("pad_token", "[PAD]"), Token("cls_token", "[CLS]"), Token("sep_token", "[SEP]"), Token("unk_token", "[UNK]"), Token("mask_token", "[MASK]")]);
        if (File.Exists(vocabJson) && File.Exists(mergesTxt)) return ByteLevelBpe(vocabJson, mergesTxt, config, Token("cls_token", "<s>"), Token("sep_token", "</s>"),
            [Token("bos_token", "<s>"), Token("pad_token", "<pad>"), Token("eos_token", "</s>"), Token("unk_token", "<unk>"), Token("mask_token", "<mask>")]);
        return null;
    }

    static JsonObject WordPiece(string path, JsonObject config, string cls, string sep, string unk, string[] specials)
    {
        var vocab = new JsonObject();
        int id = 0;
        foreach (var line in File.ReadLines(path))
        {
            string token = line.TrimEnd('\r', '\n');   // BertTokenizer's load_vocab: one token a line, trailing newline removed
            if (!vocab.ContainsKey(token)) vocab[token] = id;
            id++;
        }
        int Id(string token) => vocab[token]?.GetValue<int>() ?? throw new InvalidDataException($"{path}: special token '{token}' is not in the vocabulary");
        bool lower = Bool(config, "do_lower_case") ?? true;
        static JsonObject Special(string t, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = t, ["type_id"] = type } };
        static JsonObject Seq(string s, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = s, ["type_id"] = type } };
        return new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = Added(specials.Where(s => vocab.ContainsKey(s)).Distinct().Select(s => (s, Id(s))), lstripMask: null),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "BertNormalizer", ["clean_text"] = true, ["handle_chinese_chars"] = Bool(config, "tokenize_chinese_chars") ?? true,
                ["strip_accents"] = Bool(config, "strip_accents"), ["lowercase"] = lower,
            },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special(cls, 0), Seq("A", 0), Special(sep, 0)),
                ["pair"] = new JsonArray(Special(cls, 0), Seq("A", 0), Special(sep, 0), Seq("B", 1), Special(sep, 1)),
                ["special_tokens"] = new JsonObject
                {
                    [cls] = new JsonObject { ["id"] = cls, ["ids"] = new JsonArray(Id(cls)), ["tokens"] = new JsonArray(cls) },
                    [sep] = new JsonObject { ["id"] = sep, ["ids"] = new JsonArray(Id(sep)), ["tokens"] = new JsonArray(sep) },
                },
            },
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "WordPiece", ["unk_token"] = unk, ["continuing_subword_prefix"] = "##", ["max_input_chars_per_word"] = 100, ["vocab"] = vocab,
            },
        };
    }

    static JsonObject ByteLevelBpe(string vocabPath, string mergesPath, JsonObject config, string cls, string sep, string[] specials)
    {
        JsonObject vocab;
        try { vocab = JsonNode.Parse(File.ReadAllText(vocabPath)) as JsonObject ?? throw new InvalidDataException($"{vocabPath}: expected a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{vocabPath}: invalid JSON ({e.Message})", e); }
        // merges.txt: a "#version" header, then one "a b" pair a line (blank lines ignored), as RobertaTokenizer reads it.
        var merges = File.ReadLines(mergesPath).Where(l => !l.StartsWith("#version", StringComparison.Ordinal) && l.Trim().Length > 0)
            .Select(l => (JsonNode)JsonValue.Create(l.TrimEnd('\r'))!).ToArray();
        int Id(string token) => vocab[token]?.GetValue<int>() ?? throw new InvalidDataException($"{vocabPath}: special token '{token}' is not in the vocabulary");
        bool prefixSpace = Bool(config, "add_prefix_space") ?? false;
        JsonObject ByteLevel() => new() { ["type"] = "ByteLevel", ["add_prefix_space"] = prefixSpace, ["trim_offsets"] = true, ["use_regex"] = true };
        string mask = specials[^1];
        return new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = Added(specials.Where(s => vocab.ContainsKey(s)).Distinct().Select(s => (s, Id(s))), lstripMask: mask),
            ["normalizer"] = null,
            ["pre_tokenizer"] = ByteLevel(),
            ["post_processor"] = new JsonObject
            {
                ["type"] = "RobertaProcessing", ["sep"] = new JsonArray(sep, Id(sep)), ["cls"] = new JsonArray(cls, Id(cls)),
                ["trim_offsets"] = true, ["add_prefix_space"] = prefixSpace,
            },
            ["decoder"] = ByteLevel(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = new JsonArray(merges),
            },
        };
    }

    static JsonArray Added(IEnumerable<(string Token, int Id)> specials, string? lstripMask) => new(specials.OrderBy(s => s.Id).Select(s => (JsonNode)new JsonObject
    {
        ["id"] = s.Id, ["content"] = s.Token, ["single_word"] = false, ["lstrip"] = s.Token == lstripMask, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
    }).ToArray());

    static string? TokenText(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o => o["content"]?.GetValue<string>(),
        _ => null,
    };

    static bool? Bool(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<bool>(out bool b) ? b : null;

    static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON ({e.Message})", e); }
    }
}
