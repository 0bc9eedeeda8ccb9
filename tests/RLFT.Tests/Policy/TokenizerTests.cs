using System.Text.Json.Nodes;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;

namespace Rlft.Tests.Policy;

public class TokenizerTests
{
    static string TrainedDir(Func<JsonObject, JsonObject>? edit = null)
    {
        var json = BpeTrainer.Train(ModelPresets.BuiltInCorpus(), 400);
        string dir = TinyModels.TempDir();
        BpeTrainer.Save(edit is null ? json : edit(json), dir);
        return dir;
    }

    [Theory]
    [InlineData("The quick brown fox jumps over the lazy dog.")]
    [InlineData("  leading spaces,\ttabs\nand new lines\n\n")]
    [InlineData("héllo wörld — 你好 😀 ünïcödé never seen in training")]
    [InlineData("def add(a, b):\n    return a + b")]
    public void Trained_bpe_round_trips_text_through_the_hf_library(string text)
    {
        using var tok = HfTokenizer.Load(TrainedDir());
        var ids = tok.Encode(text);
        Assert.All(ids, id => Assert.InRange(id, 0, tok.VocabSize - 1));
        Assert.Equal(text, tok.Decode(ids));
    }

    [Fact]
    public void Merges_compress_the_corpus_and_special_tokens_get_their_own_ids()
    {
        using var tok = HfTokenizer.Load(TrainedDir());
        Assert.Equal(400, tok.VocabSize);
        Assert.Equal(398, tok.EosId);
        Assert.Equal(399, tok.PadId);
        Assert.Null(tok.BosId);
        string text = "The robot kept trying to tell a story.";
        var ids = tok.Encode(text);
        Assert.True(ids.Length * 3 < text.Length * 2, $"{ids.Length} tokens for {text.Length} bytes");
        Assert.Equal([.. tok.Encode("Hi"), tok.EosId], tok.Encode("Hi<|endoftext|>"));
        Assert.Equal("Hi", tok.Decode([.. tok.Encode("Hi"), tok.EosId, tok.PadId]));
    }

    [Fact]
    public void A_bos_is_added_only_when_the_post_processor_says_so()
    {
        string dir = TrainedDir(json =>
        {
            json["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|endoftext|>", ["type_id"] = 0 } },
                                           new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                                         new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
                ["special_tokens"] = new JsonObject
                {
                    ["<|endoftext|>"] = new JsonObject { ["id"] = "<|endoftext|>", ["ids"] = new JsonArray(398), ["tokens"] = new JsonArray("<|endoftext|>") },
                },
            };
            return json;
        });
        using var withBos = HfTokenizer.Load(dir);
        using var plain = HfTokenizer.Load(TrainedDir());
        Assert.Equal(398, withBos.BosId);
        Assert.Equal([398, .. plain.Encode("hello there")], withBos.Encode("hello there"));
        Assert.Equal("hello there", withBos.Decode(withBos.Encode("hello there")));
    }

    [Fact]
    public void Missing_or_broken_tokenizer_files_name_the_file()
    {
        var e1 = Assert.Throws<FileNotFoundException>(() => HfTokenizer.Load("/nonexistent/dir/tokenizer.json"));
        Assert.Contains("/nonexistent/dir/tokenizer.json", e1.Message);
        string dir = TinyModels.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{ not json");
        var e2 = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir));
        Assert.Contains("tokenizer.json", e2.Message);
    }

    [Fact]
    public void Encoding_without_special_tokens_leaves_out_what_the_post_processor_adds()
    {
        using var tok = HfTokenizer.Load(Rlft.Tests.Chat.TestTokenizers.SentencePieceWithBos());
        var raw = tok.Encode("Hello world", addSpecialTokens: false);
        Assert.Equal([1, .. raw], tok.Encode("Hello world"));
        Assert.DoesNotContain(1, raw);
        Assert.Equal([1], tok.PrefixIds);
        Assert.Equal(1, tok.BosId);
        // Special tokens written in the text are still recognised, as transformers does with add_special_tokens=False.
        Assert.Equal([1, .. raw, 2], tok.Encode("<s>Hello world</s>", addSpecialTokens: false));
        Assert.Equal("<s>Hello world</s>", tok.DecodeWithSpecialTokens([1, .. raw, 2]));
        Assert.Equal("Hello world", tok.Decode([1, .. raw, 2]));
    }

    [Fact]
    public void Encoding_without_special_tokens_ignores_the_files_truncation()
    {
        string dir = TrainedDir(json =>
        {
            json["truncation"] = new JsonObject { ["direction"] = "Right", ["max_length"] = 3, ["strategy"] = "LongestFirst", ["stride"] = 0 };
            return json;
        });
        using var tok = HfTokenizer.Load(dir);
        using var plain = HfTokenizer.Load(TrainedDir());
        string text = "The robot kept trying to tell a story about the sea.";
        Assert.Equal(3, tok.Encode(text).Length);
        Assert.Equal(plain.Encode(text), tok.Encode(text, addSpecialTokens: false));
        Assert.Empty(tok.PrefixIds);
    }
}
