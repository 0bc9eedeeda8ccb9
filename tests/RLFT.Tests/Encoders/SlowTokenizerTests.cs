using System.Text.Json.Nodes;
using Rlft.Policy.Tokenization;

namespace Rlft.Tests.Encoders;

/// <summary>
/// Checkpoints with only vocab.txt (BERT, DistilBERT) or vocab.json + merges.txt (RoBERTa): the converted tokenizer
/// encodes exactly as the tokenizer.json of the same vocabulary does, single texts and pairs.
/// </summary>
public class SlowTokenizerTests
{
    static readonly (string, string?)[] Texts =
    [
        ("The movie was GREAT and fun!", null), ("  where does Anna live?", "Anna lives in Paris; Bob lives in Rome."),
        ("sad", "it was a lovely song, really"), ("hotel\twarm\n\nmeal", null), ("Ünïcödé café naïve", "x"),
    ];

    static void AssertSameEncodings(string withJson, string slowOnly)
    {
        Assert.False(File.Exists(Path.Combine(slowOnly, "tokenizer.json")));
        using var expected = EncoderTokenizer.Load(withJson);
        using var converted = EncoderTokenizer.Load(slowOnly);
        foreach (var (text, pair) in Texts)
        {
            var a = expected.Encode(text, pair);
            var b = converted.Encode(text, pair);
            Assert.Equal(a.Ids, b.Ids);
            Assert.Equal(a.TypeIds, b.TypeIds);
        }
        Assert.Equal(expected.PadId, converted.PadId);
    }

    [Fact]
    public void A_BERT_vocab_txt_encodes_as_its_tokenizer_json()
    {
        string withJson = TinyEncoders.TempDir(), slow = TinyEncoders.TempDir();
        var json = EncoderTokenizerBuilder.WordPiece(TinyEncoders.Corpus, 150);
        EncoderTokenizerBuilder.Save(json, withJson, roberta: false, maxLength: 128);
        var vocab = ((JsonObject)json["model"]!["vocab"]!).OrderBy(kv => kv.Value!.GetValue<int>()).Select(kv => kv.Key);
        File.WriteAllLines(Path.Combine(slow, "vocab.txt"), vocab);
        File.WriteAllText(Path.Combine(slow, "tokenizer_config.json"), "{\"do_lower_case\": true, \"tokenizer_class\": \"BertTokenizer\"}");
        AssertSameEncodings(withJson, slow);

        // A cased vocabulary keeps case: "Anna" is no longer "anna".
        File.WriteAllText(Path.Combine(slow, "tokenizer_config.json"), "{\"do_lower_case\": false}");
        using var cased = EncoderTokenizer.Load(slow);
        Assert.NotEqual(cased.Encode("anna").Ids, cased.Encode("Anna").Ids);
    }

    [Fact]
    public void A_RoBERTa_vocab_json_and_merges_txt_encode_as_its_tokenizer_json()
    {
        string withJson = TinyEncoders.TempDir(), slow = TinyEncoders.TempDir();
        var json = EncoderTokenizerBuilder.RobertaBpe(TinyEncoders.Corpus, 320);
        EncoderTokenizerBuilder.Save(json, withJson, roberta: true, maxLength: 128);
        File.WriteAllText(Path.Combine(slow, "vocab.json"), json["model"]!["vocab"]!.ToJsonString());
        File.WriteAllLines(Path.Combine(slow, "merges.txt"), ["#version: 0.2", .. json["model"]!["merges"]!.AsArray().Select(m => m!.GetValue<string>())]);
        AssertSameEncodings(withJson, slow);
    }

    [Fact]
    public void A_model_directory_with_only_vocab_txt_is_checked_and_classifies_the_same()
    {
        string dir = TinyEncoders.Directory("distilbert");
        string[] texts = ["The movie was GREAT.", "sad"];
        float[][] before;
        using (var model = Rlft.Policy.Encoders.EncoderTextModel.Load(dir)) before = model.Logits(texts.Select(t => (t, (string?)null)).ToList());
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")))!;
        File.WriteAllLines(Path.Combine(dir, "vocab.txt"), ((JsonObject)json["model"]!["vocab"]!).OrderBy(kv => kv.Value!.GetValue<int>()).Select(kv => kv.Key));
        File.Delete(Path.Combine(dir, "tokenizer.json"));
        Assert.Empty(Rlft.Policy.Checkpoints.ModelDirectory.CheckEncoder(dir, out _, exactHead: true));
        using var slow = Rlft.Policy.Encoders.EncoderTextModel.Load(dir);
        var after = slow.Logits(texts.Select(t => (t, (string?)null)).ToList());
        for (int i = 0; i < texts.Length; i++) Assert.Equal(before[i], after[i]);

        File.Delete(Path.Combine(dir, "vocab.txt"));
        Assert.Contains(Rlft.Policy.Checkpoints.ModelDirectory.CheckEncoder(dir, out _, exactHead: true), p => p.Contains("tokenizer.json: missing"));
    }

    [Fact]
    public void A_directory_without_any_tokenizer_files_is_named()
    {
        string dir = TinyEncoders.TempDir();
        Assert.Null(SlowTokenizerFiles.Resolve(dir));
        File.WriteAllLines(Path.Combine(dir, "vocab.txt"), ["[PAD]", "a", "b"]);
        var e = Assert.Throws<InvalidDataException>(() => SlowTokenizerFiles.Convert(dir));
        Assert.Contains("special token '[CLS]' is not in the vocabulary", e.Message);
    }
}
