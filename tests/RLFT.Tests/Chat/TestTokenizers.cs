using System.Text.Json.Nodes;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using Rlft.Tests.Policy;

namespace Rlft.Tests.Chat;

/// <summary>Small tokenizer directories written by the tests: a byte-level BPE with ChatML tokens, and a SentencePiece-style BPE with a BOS post-processor.</summary>
static class TestTokenizers
{
    public const string ChatMlTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    static readonly Lazy<JsonObject> ByteLevelJson = new(() =>
        BpeTrainer.Train(ModelPresets.BuiltInCorpus(), 600, ["<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"]));

    /// <summary>The tokenizer.json of <see cref="ByteLevelChatMl"/>.</summary>
    public static JsonObject ByteLevelJsonObject => ByteLevelJson.Value;

    /// <summary>
    /// GPT-2-style byte-level BPE (trained on the built-in corpus) with ChatML's special tokens; EOS is
    /// &lt;|endoftext|&gt;, the template's end of turn &lt;|im_end|&gt;. <paramref name="template"/> null leaves the template out.
    /// </summary>
    public static string ByteLevelChatMl(string? template = ChatMlTemplate)
    {
        string dir = TinyModels.TempDir();
        BpeTrainer.Save(ByteLevelJson.Value, dir);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")))!;
        if (template is not null) config["chat_template"] = template;
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        return dir;
    }

    /// <summary>
    /// A Llama-2/Mistral-style tokenizer: the normalizer prepends "▁" and turns spaces into "▁", BPE without
    /// pre-tokenizer, byte fallback, and a TemplateProcessing post-processor that puts &lt;s&gt; (id 1) first.
    /// </summary>
    public static string SentencePieceWithBos(string? template = null)
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = vocab.Count;
        foreach (char c in "▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:?!'-<>|/[]\n") vocab[c.ToString()] = vocab.Count;
        string[][] merges =
        [
            ["▁", "H"], ["e", "l"], ["el", "l"], ["ell", "o"], ["▁H", "ello"], ["▁", "w"], ["o", "r"], ["▁w", "or"], ["l", "d"], ["▁wor", "ld"],
            ["▁", "P"], ["a", "r"], ["▁P", "ar"], ["i", "s"], ["▁Par", "is"], ["▁", "Q"], ["u", "e"], ["▁Q", "ue"], ["s", "t"], ["i", "o"],
            ["io", "n"], ["▁Que", "st"], ["▁Quest", "ion"], ["▁", "1"], ["▁1", "2"], ["3", "4"], ["▁12", "34"], ["34", "5"],
        ];
        foreach (var m in merges) vocab[m[0] + m[1]] = vocab.Count;
        JsonObject Added(int id, string content) => new()
        {
            ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
        };
        JsonObject Special(string id) => new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = 0 } };
        JsonObject Sequence(string id) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = 0 } };
        var json = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = new JsonArray(Added(0, "<unk>"), Added(1, "<s>"), Added(2, "</s>")),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special("<s>"), Sequence("A")),
                ["pair"] = new JsonArray(Special("<s>"), Sequence("A"), Special("<s>"), Sequence("B")),
                ["special_tokens"] = new JsonObject { ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") } },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true, ["byte_fallback"] = true, ["ignore_merges"] = false, ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m[0], m[1])).ToArray()),
            },
        };
        string dir = TinyModels.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        var config = new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["add_bos_token"] = true };
        if (template is not null) config["chat_template"] = template;
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        return dir;
    }
}
