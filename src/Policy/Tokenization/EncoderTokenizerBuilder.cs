using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Tokenization;

/// <summary>
/// Tokenizers for the encoders RLFT initialises itself, written as the <c>tokenizer.json</c> files of the real families:
/// BERT's (BertNormalizer lower-casing, BertPreTokenizer, WordPiece with <c>##</c> continuations, TemplateProcessing
/// <c>[CLS] A [SEP] B [SEP]</c> with B's part type 1) and RoBERTa's (byte-level BPE with &lt;s&gt;=0, &lt;pad&gt;=1,
/// &lt;/s&gt;=2, &lt;unk&gt;=3, &lt;mask&gt;=4 and RobertaProcessing).
/// </summary>
internal static class EncoderTokenizerBuilder
{
    public static readonly string[] BertSpecials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    public static readonly string[] RobertaSpecials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];

    /// <summary>
    /// A WordPiece vocabulary from <paramref name="corpus"/>: the special tokens, every character seen (alone and as a
    /// <c>##</c> continuation), then whole words by frequency (ties in ordinal order) up to <paramref name="vocabSize"/>.
    /// </summary>
    public static JsonObject WordPiece(string corpus, int vocabSize)
    {
        var words = new Dictionary<string, int>();
        var chars = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var word in BertWords(corpus.ToLowerInvariant()))
        {
            words[word] = words.GetValueOrDefault(word) + 1;
            foreach (var rune in word.EnumerateRunes()) chars.Add(rune.ToString());
        }
        var vocab = new List<string>(BertSpecials);
        vocab.AddRange(chars);
        vocab.AddRange(chars.Select(c => "##" + c));
        var seen = vocab.ToHashSet();
        foreach (var w in words.Where(kv => kv.Key.Length > 1).OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key))
        {
            if (vocab.Count >= vocabSize) break;
            if (seen.Add(w)) vocab.Add(w);
        }
        var vocabJson = new JsonObject();
        for (int i = 0; i < vocab.Count; i++) vocabJson[vocab[i]] = i;
        static JsonObject Special(string id, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        static JsonObject Seq(string id, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = Added(BertSpecials, 0),
            ["normalizer"] = new JsonObject { ["type"] = "BertNormalizer", ["clean_text"] = true, ["handle_chinese_chars"] = true, ["strip_accents"] = null, ["lowercase"] = true },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special("[CLS]", 0), Seq("A", 0), Special("[SEP]", 0)),
                ["pair"] = new JsonArray(Special("[CLS]", 0), Seq("A", 0), Special("[SEP]", 0), Seq("B", 1), Special("[SEP]", 1)),
                ["special_tokens"] = new JsonObject
                {
                    ["[CLS]"] = new JsonObject { ["id"] = "[CLS]", ["ids"] = new JsonArray(2), ["tokens"] = new JsonArray("[CLS]") },
                    ["[SEP]"] = new JsonObject { ["id"] = "[SEP]", ["ids"] = new JsonArray(3), ["tokens"] = new JsonArray("[SEP]") },
                },
            },
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "WordPiece", ["unk_token"] = "[UNK]", ["continuing_subword_prefix"] = "##", ["max_input_chars_per_word"] = 100,
                ["vocab"] = vocabJson,
            },
        };
    }

    /// <summary>A byte-level BPE (as <see cref="BpeTrainer"/>) renumbered RoBERTa's way, with RobertaProcessing.</summary>
    public static JsonObject RobertaBpe(string corpus, int vocabSize)
    {
        var json = BpeTrainer.Train(corpus, vocabSize, RobertaSpecials);
        var vocab = (JsonObject)json["model"]!["vocab"]!;
        // The special tokens sit in the model's vocabulary too, as in roberta-base's tokenizer.json: ids then run
        // 0 … n−1 without holes (the native decoder treats ids at or past the vocabulary's size as unknown).
        var shifted = new JsonObject();
        for (int i = 0; i < RobertaSpecials.Length; i++) shifted[RobertaSpecials[i]] = i;
        foreach (var (token, id) in vocab.ToList()) shifted[token] = id!.GetValue<int>() + RobertaSpecials.Length;
        json["model"]!["vocab"] = shifted;
        json["added_tokens"] = Added(RobertaSpecials, 0);
        json["post_processor"] = new JsonObject
        {
            ["type"] = "RobertaProcessing", ["sep"] = new JsonArray("</s>", 2), ["cls"] = new JsonArray("<s>", 0),
            ["trim_offsets"] = true, ["add_prefix_space"] = false,
        };
        return json;
    }

    /// <summary>Writes tokenizer.json and a tokenizer_config.json naming the family's special tokens.</summary>
    public static void Save(JsonObject tokenizer, string dir, bool roberta, int maxLength)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        var cfg = roberta
            ? new JsonObject
            {
                ["tokenizer_class"] = "RobertaTokenizer", ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["sep_token"] = "</s>", ["cls_token"] = "<s>",
                ["unk_token"] = "<unk>", ["pad_token"] = "<pad>", ["mask_token"] = "<mask>", ["add_prefix_space"] = false,
            }
            : new JsonObject
            {
                ["tokenizer_class"] = "BertTokenizer", ["do_lower_case"] = true, ["unk_token"] = "[UNK]", ["sep_token"] = "[SEP]",
                ["pad_token"] = "[PAD]", ["cls_token"] = "[CLS]", ["mask_token"] = "[MASK]", ["tokenize_chinese_chars"] = true, ["strip_accents"] = null,
            };
        cfg["model_max_length"] = maxLength;
        cfg["clean_up_tokenization_spaces"] = true;
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    static JsonArray Added(IReadOnlyList<string> specials, int first) => new(specials.Select((s, i) => (JsonNode)new JsonObject
    {
        ["id"] = first + i, ["content"] = s, ["single_word"] = false, ["lstrip"] = s == "<mask>", ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
    }).ToArray());

    /// <summary>BertPreTokenizer's split: runs of letters/digits, each punctuation character on its own, whitespace dropped.</summary>
    static IEnumerable<string> BertWords(string text)
    {
        var sb = new StringBuilder();
        foreach (char c in text)
        {
            if (char.IsWhiteSpace(c) || IsBertPunctuation(c))
            {
                if (sb.Length > 0) { yield return sb.ToString(); sb.Clear(); }
                if (!char.IsWhiteSpace(c)) yield return c.ToString(CultureInfo.InvariantCulture);
            }
            else sb.Append(c);
        }
        if (sb.Length > 0) yield return sb.ToString();
    }

    static bool IsBertPunctuation(char c) => c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~' || char.IsPunctuation(c);
}
