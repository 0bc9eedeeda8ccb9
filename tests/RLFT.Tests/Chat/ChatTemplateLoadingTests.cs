using System.Text.Json.Nodes;
using Rlft.Policy.Chat;
using Rlft.Tests.Policy;

namespace Rlft.Tests.Chat;

/// <summary>Where a model's template comes from, and which variables it sees.</summary>
public class ChatTemplateLoadingTests
{
    static string ModelDir(JsonObject config, string? jinjaFile = null)
    {
        string dir = TinyModels.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        if (jinjaFile is not null) File.WriteAllText(Path.Combine(dir, "chat_template.jinja"), jinjaFile);
        return dir;
    }

    static readonly ChatMessage[] Hi = [new("user", "hi")];

    [Fact]
    public void The_config_template_sees_special_tokens_written_as_strings_or_added_token_objects()
    {
        var dir = ModelDir(new JsonObject
        {
            ["chat_template"] = "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ unk_token is defined }}|{{ additional_special_tokens }}|{{ image_token }}|{{ messages[0].content }}",
            ["bos_token"] = new JsonObject { ["__type"] = "AddedToken", ["content"] = "<s>", ["lstrip"] = false },
            ["eos_token"] = "</s>", ["pad_token"] = null, ["unk_token"] = null,
            ["additional_special_tokens"] = new JsonArray("<a>", "<b>"),
            ["extra_special_tokens"] = new JsonObject { ["image_token"] = "<img>" },
        });
        Assert.Equal("<s>|</s>||False|['<a>', '<b>']|<img>|hi", ChatTemplate.Load(dir).Render(Hi, addGenerationPrompt: false));
    }

    [Fact]
    public void A_list_of_named_templates_uses_default_or_the_name_asked_for()
    {
        var dir = ModelDir(new JsonObject
        {
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "tool_use", ["template"] = "tools" },
                new JsonObject { ["name"] = "default", ["template"] = "plain {{ add_generation_prompt }}" }),
        });
        Assert.Equal("plain True", ChatTemplate.Load(dir).Render(Hi, addGenerationPrompt: true));
        Assert.Equal("tools", ChatTemplate.Load(dir, name: "tool_use").Render(Hi, addGenerationPrompt: true));
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Load(dir, name: "rag"));
        Assert.Contains("no chat template named \"rag\" (names: default, tool_use)", e.Message);
    }

    [Fact]
    public void A_chat_template_jinja_file_takes_precedence_and_an_override_file_beats_both()
    {
        var dir = ModelDir(new JsonObject { ["chat_template"] = "config", ["eos_token"] = "</s>" }, jinjaFile: "file {{ eos_token }}\n");
        Assert.Equal("file </s>", ChatTemplate.Load(dir).Render(Hi, addGenerationPrompt: false));
        string other = Path.Combine(dir, "other.jinja");
        File.WriteAllText(other, "override {{ eos_token }}");
        Assert.Equal("override </s>", ChatTemplate.Load(dir, other).Render(Hi, addGenerationPrompt: false));
    }

    [Fact]
    public void A_model_without_a_template_is_refused_saying_so()
    {
        var dir = ModelDir(new JsonObject { ["eos_token"] = "</s>" });
        Assert.Null(ChatTemplate.TryLoad(dir));
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Load(dir));
        Assert.Equal($"{dir} has no chat template (no chat_template.jinja, and tokenizer_config.json has no \"chat_template\"); give one with --chat-template FILE", e.Message);
    }

    [Fact]
    public void A_template_with_a_syntax_error_names_the_file_and_line()
    {
        var dir = ModelDir(new JsonObject(), jinjaFile: "ok\n{% for m in messages %}\n{{ m.content }");
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Load(dir));
        Assert.StartsWith(Path.Combine(dir, "chat_template.jinja") + ": line 3:", e.Message);
    }
}
