using System.Text.Json.Nodes;
using Rlft.Policy.Encoders;

namespace Rlft.Tests.Encoders;

/// <summary>`rlft init-model` for encoders and `rlft classify`: end to end, and one-line errors for bad input.</summary>
public class EncoderCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    static JsonObject[] ReadJsonLines(string path) => File.ReadAllLines(path).Select(l => (JsonObject)JsonNode.Parse(l)!).ToArray();

    [Theory]
    [InlineData("bert")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    public void Init_model_then_classify_gives_the_models_logits_batched_or_not(string arch)
    {
        string root = TinyEncoders.TempDir(), dir = Path.Combine(root, "m");
        var init = Run("init-model", "--arch", arch, "--preset", "tiny", "--out", dir, "--labels", "neg,neutral,pos", "--seed", "4");
        Assert.True(init.Code == 0, init.Err);
        Assert.Contains("ForSequenceClassification with 3 labels", init.Out);
        var config = EncoderConfig.Load(Path.Combine(dir, "config.json"));
        Assert.Equal(["neg", "neutral", "pos"], config.Labels);

        string input = Path.Combine(root, "in.jsonl");
        File.WriteAllLines(input,
        [
            "{\"text\": \"The movie was great and fun.\"}",
            "",
            "{\"text\": \"where does anna live?\", \"text_pair\": \"Anna lives in Paris, Bob lives in Rome.\", \"id\": 7}",
            "{\"text\": \"sad\"}",
        ]);
        string batched = Path.Combine(root, "batched.jsonl"), single = Path.Combine(root, "single.jsonl");
        var a = Run("classify", "--model", dir, "--input", input, "--output", batched);
        Assert.True(a.Code == 0, a.Err);
        var b = Run("classify", "--model", dir, "--input", input, "--output", single, "--batch-size", "1");
        Assert.True(b.Code == 0, b.Err);

        using var model = EncoderTextModel.Load(dir);
        var expected = model.Logits([("The movie was great and fun.", null), ("where does anna live?", "Anna lives in Paris, Bob lives in Rome."), ("sad", null)], batchSize: 1);
        var lines = ReadJsonLines(batched);
        var alone = ReadJsonLines(single);
        Assert.Equal(3, lines.Length);
        for (int i = 0; i < 3; i++)
        {
            var logits = lines[i]["logits"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
            var logitsAlone = alone[i]["logits"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
            Assert.Equal(3, logits.Length);
            for (int k = 0; k < 3; k++)
            {
                Assert.Equal(expected[i][k], logits[k], 1e-5f);
                Assert.Equal(logits[k], logitsAlone[k], 1e-5f);
            }
            Assert.Equal(config.Labels[Array.IndexOf(logits, logits.Max())], lines[i]["label"]!.GetValue<string>());
        }
        // A pair is not the same input as its first text alone.
        var first = model.Logits([("where does anna live?", null)])[0];
        Assert.False(first.SequenceEqual(expected[1]), "text_pair made no difference");
    }

    [Fact]
    public void A_QA_model_answers_with_a_span_of_the_context()
    {
        string root = TinyEncoders.TempDir(), dir = Path.Combine(root, "qa");
        var init = Run("init-model", "--arch", "bert", "--out", dir, "--head", "qa");
        Assert.True(init.Code == 0, init.Err);
        Assert.Contains("BertForQuestionAnswering", init.Out);
        string context = string.Join(" ", Enumerable.Repeat("Anna lives in Paris and Bob lives in Rome; the hotel was warm.", 20));
        string input = Path.Combine(root, "q.jsonl");
        File.WriteAllLines(input, [new JsonObject { ["question"] = "Where does Anna live?", ["context"] = context }.ToJsonString()]);
        var run = Run("classify", "--model", dir, "--input", input, "--max-answer-length", "4");
        Assert.True(run.Code == 0, run.Err);
        var line = (JsonObject)JsonNode.Parse(run.Out.Trim())!;
        int start = line["start"]!.GetValue<int>(), end = line["end"]!.GetValue<int>();
        Assert.True(0 <= start && start < end && end <= context.Length, $"[{start}, {end})");
        Assert.Equal(context[start..end], line["answer"]!.GetValue<string>());
        double score = line["score"]!.GetValue<double>();
        Assert.True(score > 0 && score <= 1, $"score {score}");
    }

    [Fact]
    public void Bad_input_fails_with_one_line_naming_the_file_and_line()
    {
        string root = TinyEncoders.TempDir(), dir = Path.Combine(root, "m"), qa = Path.Combine(root, "qa"), output = Path.Combine(root, "out.jsonl");
        Assert.Equal(0, Run("init-model", "--arch", "distilbert", "--out", dir).Code);
        Assert.Equal(0, Run("init-model", "--arch", "roberta", "--out", qa, "--head", "qa").Code);
        string bad = Path.Combine(root, "bad.jsonl");

        void Refused(string[] lines, string model, string expected)
        {
            File.WriteAllLines(bad, lines);
            var r = Run("classify", "--model", model, "--input", bad, "--output", output);
            Assert.Equal(2, r.Code);
            Assert.Single(r.Err.TrimEnd().Split('\n'));
            Assert.Contains(expected, r.Err);
            Assert.False(File.Exists(output));
        }
        Refused(["{\"text\": \"a\"}", "{\"text\": \"b\""], dir, $"{bad}:2: invalid JSON");
        Refused(["{\"text\": \"a\"}", "", "{\"txt\": \"b\"}"], dir, $"{bad}:3: missing \"text\"");
        Refused(["{\"text\": 5}"], dir, $"{bad}:1: \"text\" must be a string");
        Refused(["{\"text\": \"a\", \"text_pair\": [1]}"], dir, $"{bad}:1: \"text_pair\" must be a string");
        Refused(["[1, 2]"], dir, $"{bad}:1: expected a JSON object");
        Refused(["", "  "], dir, $"{bad}: no lines to classify");
        Refused(["{\"text\": \"a\"}"], qa, $"{bad}:1: missing \"question\"");
        Refused(["{\"question\": \"a\", \"context\": \"  \"}"], qa, $"{bad}:1: \"context\" is empty");
        Refused(["{\"text\": \"a\"}"], Path.Combine(root, "nope"), "nope: no such model directory");

        string gpt2 = Path.Combine(root, "gpt2");
        Assert.Equal(0, Run("init-model", "--arch", "gpt2", "--out", gpt2).Code);
        Refused(["{\"text\": \"a\"}"], gpt2, "field 'model_type' is 'gpt2'");

        string token = Path.Combine(root, "token");
        Assert.Equal(0, Run("init-model", "--arch", "bert", "--out", token, "--head", "token").Code);
        Refused(["{\"text\": \"a\"}"], token, "architectures is BertForTokenClassification");

        File.Delete(Path.Combine(dir, "model.safetensors"));
        Refused(["{\"text\": \"a\"}"], dir, "model.safetensors");

        var numLabels = Run("init-model", "--arch", "gpt2", "--out", Path.Combine(root, "x"), "--num-labels", "3");
        Assert.Equal(2, numLabels.Code);
        Assert.Contains("--num-labels: only encoder architectures", numLabels.Err);
        var qaLabels = Run("init-model", "--arch", "bert", "--out", Path.Combine(root, "y"), "--head", "qa", "--num-labels", "3");
        Assert.Equal(2, qaLabels.Code);
        Assert.False(Directory.Exists(Path.Combine(root, "y")));
    }
}
