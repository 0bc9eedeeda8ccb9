using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Tokenization;

/// <summary>
/// Trains a byte-level BPE on a text corpus and writes it as a Hugging Face <c>tokenizer.json</c> of the same shape
/// GPT-2's has: ByteLevel pre-tokenizer and decoder, a BPE model with vocab and merges, special tokens appended as
/// added tokens. The 256 byte symbols are always in the vocabulary, so every string encodes.
/// </summary>
internal static class BpeTrainer
{
    public static readonly string[] DefaultSpecialTokens = ["<|endoftext|>", "<|pad|>"];

    /// <summary>
    /// Learns merges until the vocabulary (bytes + merges + specials) reaches <paramref name="vocabSize"/> or no pair
    /// occurs twice. Deterministic: ties break on the pair's ordinal string order.
    /// </summary>
    public static JsonObject Train(string corpus, int vocabSize, IReadOnlyList<string>? specialTokens = null)
    {
        specialTokens ??= DefaultSpecialTokens;
        if (vocabSize < 256 + specialTokens.Count) throw new ArgumentException($"vocab size {vocabSize} is below 256 bytes + {specialTokens.Count} special tokens");

        var symbols = new List<string>();
        var ids = new Dictionary<string, int>();
        foreach (var c in ByteLevel.ByteToChar) { ids[c.ToString()] = symbols.Count; symbols.Add(c.ToString()); }

        // Word frequencies after pre-tokenization; each word is a list of symbol ids.
        var counts = new Dictionary<string, int>();
        foreach (System.Text.RegularExpressions.Match m in ByteLevel.Pattern().Matches(corpus))
        {
            var w = ByteLevel.Map(m.Value);
            counts[w] = counts.GetValueOrDefault(w) + 1;
        }
        var words = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (Symbols: kv.Key.Select(ch => ids[ch.ToString()]).ToList(), Count: kv.Value)).ToList();

        var merges = new List<(int A, int B)>();
        string Key((int A, int B) p) => symbols[p.A] + " " + symbols[p.B];
        int target = vocabSize - specialTokens.Count;
        while (symbols.Count < target)
        {
            var pairs = new Dictionary<(int, int), int>();
            foreach (var (s, n) in words)
                for (int i = 0; i + 1 < s.Count; i++) pairs[(s[i], s[i + 1])] = pairs.GetValueOrDefault((s[i], s[i + 1])) + n;
            if (pairs.Count == 0) break;
            (int, int) bestPair = default;
            int bestCount = 0;
            foreach (var (pair, n) in pairs)
            {
                if (n < bestCount) continue;
                if (n == bestCount && string.CompareOrdinal(Key(pair), Key(bestPair)) >= 0) continue;
                bestPair = pair; bestCount = n;
            }
            if (bestCount < 2) break;
            var (a, b) = bestPair;
            string merged = symbols[a] + symbols[b];
            int id = symbols.Count;
            symbols.Add(merged); ids[merged] = id; merges.Add((a, b));
            foreach (var (s, _) in words)
                for (int i = 0; i + 1 < s.Count; i++)
                    if (s[i] == a && s[i + 1] == b) { s[i] = id; s.RemoveAt(i + 1); }
        }

        var vocab = new JsonObject();
        for (int i = 0; i < symbols.Count; i++) vocab[symbols[i]] = i;
        var added = new JsonArray();
        for (int i = 0; i < specialTokens.Count; i++)
            added.Add(new JsonObject
            {
                ["id"] = symbols.Count + i, ["content"] = specialTokens[i], ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        var byteLevel = () => new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = byteLevel(),
            ["post_processor"] = byteLevel(),
            ["decoder"] = byteLevel(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)JsonValue.Create(symbols[m.A] + " " + symbols[m.B])!).ToArray()),
            },
        };
    }

    /// <summary>
    /// Writes tokenizer.json plus a tokenizer_config.json naming EOS and PAD (the first two special tokens),
    /// as transformers' AutoTokenizer reads them, and the chat template when one is given.
    /// </summary>
    public static void Save(JsonObject tokenizer, string dir, string eosToken = "<|endoftext|>", string padToken = "<|pad|>", string? chatTemplate = null)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        var cfg = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["eos_token"] = eosToken, ["pad_token"] = padToken, ["bos_token"] = null, ["unk_token"] = null,
            ["add_bos_token"] = false, ["model_max_length"] = 1024, ["clean_up_tokenization_spaces"] = false,
        };
        if (chatTemplate is not null) cfg["chat_template"] = chatTemplate;
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
