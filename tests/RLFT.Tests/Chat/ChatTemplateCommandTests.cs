using System.Text.Json.Nodes;
using Rlft.Policy.Tokenization;
using Rlft.Tests.Policy;

namespace Rlft.Tests.Chat;

public class ChatTemplateCommandTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Renders_each_line_and_reports_the_lines_the_template_refuses()
    {
        string dir = TestTokenizers.ByteLevelChatMl();
        string input = Path.Combine(dir, "in.jsonl"), output = Path.Combine(dir, "out.jsonl");
        File.WriteAllLines(input,
        [
            """{"messages": [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi! <|im_end|> ok"}], "add_generation_prompt": false}""",
            "",
            """{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "héllo 😀"}], "add_generation_prompt": true}""",
            """{"messages": "not a list"}""",
            "{ broken",
        ]);
        var r = Run("chat-template", "--model", dir, "--input", input, "--output", output);
        Assert.Equal(1, r.Code);
        var lines = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(4, lines.Length);
        using var tok = HfTokenizer.Load(dir);
        Assert.Equal("<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\nHi! <|im_end|> ok<|im_end|>\n", lines[0]["text"]!.GetValue<string>());
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhéllo 😀<|im_end|>\n<|im_start|>assistant\n", lines[1]["text"]!.GetValue<string>());
        foreach (var line in lines.Take(2))
            Assert.Equal(tok.Encode(line["text"]!.GetValue<string>(), addSpecialTokens: false), line["input_ids"]!.AsArray().Select(x => x!.GetValue<int>()));
        Assert.Equal(tok.SpecialTokens["<|im_start|>"], lines[0]["input_ids"]![0]!.GetValue<int>());
        Assert.Equal($"{input}:4: messages: expected a list of {{\"role\", \"content\"}} objects", lines[2]["error"]!.GetValue<string>());
        Assert.StartsWith($"{input}:5: invalid JSON", lines[3]["error"]!.GetValue<string>());
    }

    [Fact]
    public void An_override_template_raising_an_exception_gives_its_message_for_that_line_only()
    {
        string dir = TestTokenizers.ByteLevelChatMl();
        string template = Path.Combine(dir, "alternate.jinja");
        File.WriteAllText(template, "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Roles must alternate') }}{% endif %}[{{ m.content }}]{% endfor %}");
        string input = Path.Combine(dir, "in.jsonl");
        File.WriteAllLines(input,
        [
            """{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}""",
            """{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}""",
        ]);
        var r = Run("chat-template", "--model", dir, "--input", input, "--chat-template", template);
        Assert.Equal(1, r.Code);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal("Roles must alternate", lines[0]["error"]!.GetValue<string>());
        Assert.Equal("[a][b]", lines[1]["text"]!.GetValue<string>());
    }

    [Fact]
    public void A_model_without_a_template_or_a_missing_directory_is_refused_in_one_line()
    {
        string dir = TestTokenizers.ByteLevelChatMl(template: null);
        string input = Path.Combine(dir, "in.jsonl");
        File.WriteAllText(input, """{"messages": [{"role": "user", "content": "a"}]}""");
        var r = Run("chat-template", "--model", dir, "--input", input);
        Assert.Equal(Rlft.Host.Commands.Cli.InvalidInput, r.Code);
        Assert.Equal($"rlft: {dir} has no chat template (no chat_template.jinja, and tokenizer_config.json has no \"chat_template\"); give one with --chat-template FILE", r.Err.Trim());
        var missing = Run("chat-template", "--model", Path.Combine(dir, "nope"), "--input", input);
        Assert.Equal(Rlft.Host.Commands.Cli.InvalidInput, missing.Code);
        Assert.Equal($"rlft: model directory not found: {Path.Combine(dir, "nope")}", missing.Err.Trim());
    }
}
