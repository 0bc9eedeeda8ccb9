using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Tokenization;

namespace Rlft.Tests.Policy;

public class PolicyCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void Init_model_then_generate_then_logprobs_works_end_to_end(string arch)
    {
        string dir = Path.Combine(TinyModels.TempDir(), "model");
        var init = Run("init-model", "--arch", arch, "--preset", "tiny", "--out", dir, "--seed", "3");
        Assert.True(init.Code == 0, init.Err);
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(dir, f)), f);

        var g1 = Run("generate", "--model", dir, "--prompt", "Question: What is two plus three?", "--max-new-tokens", "12", "--seed", "5");
        var g2 = Run("generate", "--model", dir, "--prompt", "Question: What is two plus three?", "--max-new-tokens", "12", "--seed", "5");
        Assert.True(g1.Code == 0, g1.Err);
        Assert.Equal(g1.Out, g2.Out);

        using var tok = HfTokenizer.Load(dir);
        string input = Path.Combine(Path.GetDirectoryName(dir)!, "in.jsonl"), output = Path.Combine(Path.GetDirectoryName(dir)!, "out.jsonl");
        var ids = tok.Encode("The cat sat on the mat.");
        File.WriteAllLines(input,
        [
            "{\"prompt\": \"The cat sat\", \"completion\": \" on the mat.\"}",
            "",
            new JsonObject { ["input_ids"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()) }.ToJsonString(),
        ]);
        var lp = Run("logprobs", "--model", dir, "--input", input, "--output", output);
        Assert.True(lp.Code == 0, lp.Err);
        var lines = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.Equal(tok.Encode(" on the mat."), lines[0]["tokens"]!.AsArray().Select(x => x!.GetValue<int>()));
        Assert.Equal(ids[1..], lines[1]["tokens"]!.AsArray().Select(x => x!.GetValue<int>()));
        foreach (var line in lines)
        {
            var values = line["token_logprobs"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            Assert.Equal(line["tokens"]!.AsArray().Count, values.Length);
            Assert.All(values, v => Assert.True(v < 0 && v > -20));
            Assert.Equal(values.Sum(), line["sum_logprob"]!.GetValue<double>(), 6);
        }
    }

    [Fact]
    public void Bad_inputs_fail_with_one_line_naming_the_file_and_line()
    {
        string root = TinyModels.TempDir();
        string dir = Path.Combine(root, "m");
        Assert.Equal(0, Run("init-model", "--arch", "gpt2", "--out", dir).Code);

        var missingModel = Run("generate", "--model", Path.Combine(root, "nope"), "--prompt", "hi");
        Assert.NotEqual(0, missingModel.Code);
        Assert.Contains("nope", missingModel.Err);

        string bad = Path.Combine(root, "bad.jsonl");
        File.WriteAllLines(bad, ["{\"prompt\": \"a\", \"completion\": \"b\"}", "{\"prompt\": \"a\", \"completion\": \"b\"", "{}"]);
        var badJson = Run("logprobs", "--model", dir, "--input", bad, "--output", Path.Combine(root, "o.jsonl"));
        Assert.NotEqual(0, badJson.Code);
        Assert.Single(badJson.Err.TrimEnd().Split('\n'));
        Assert.Contains($"{bad}:2: invalid JSON", badJson.Err);
        Assert.False(File.Exists(Path.Combine(root, "o.jsonl")));

        File.WriteAllLines(bad, ["{\"completion\": \"b\"}"]);
        Assert.Contains($"{bad}:1: expected", Run("logprobs", "--model", dir, "--input", bad).Err);
        Assert.Contains("input file not found", Run("logprobs", "--model", dir, "--input", Path.Combine(root, "missing.jsonl")).Err);

        File.Delete(Path.Combine(dir, Checkpoint.WeightsFile));
        var noWeights = Run("generate", "--model", dir, "--prompt", "hi");
        Assert.NotEqual(0, noWeights.Code);
        Assert.Contains("model.safetensors", noWeights.Err);

        var badArch = Run("init-model", "--arch", "t5", "--out", Path.Combine(root, "x"));
        Assert.NotEqual(0, badArch.Code);
        Assert.False(Directory.Exists(Path.Combine(root, "x")));

        // A published shape fixes its architecture; a size needs one.
        var wrongFamily = Run("init-model", "--preset", "qwen2-0.5b", "--arch", "llama", "--out", Path.Combine(root, "y"));
        Assert.NotEqual(0, wrongFamily.Code);
        Assert.Contains("--arch: preset 'qwen2-0.5b' is a qwen2 model; it cannot be built as 'llama'", wrongFamily.Err);
        var noArch = Run("init-model", "--preset", "small", "--out", Path.Combine(root, "y"));
        Assert.Contains("--arch: preset 'small' needs an architecture", noArch.Err);
        Assert.False(Directory.Exists(Path.Combine(root, "y")));
    }
}
