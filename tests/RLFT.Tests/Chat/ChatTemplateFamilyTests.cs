using System.Text.Json.Nodes;
using Rlft.Policy.Chat;
using Rlft.Policy.Chat.Jinja;

namespace Rlft.Tests.Chat;

/// <summary>
/// Templates written in the style of each family (Templates/*.jinja, from the families' documented formats) rendered
/// for single-turn, multi-turn, system, generation prompt on/off, unicode and literal special-token text, and the
/// raise_exception paths. scripts/check-chat-templates.sh renders the same files with Jinja2 and transformers.js.
/// </summary>
public class ChatTemplateFamilyTests
{
    static readonly Dictionary<string, (string Bos, string Eos)> Tokens = new()
    {
        ["chatml"] = ("", "<|im_end|>"), ["qwen3"] = ("", "<|im_end|>"), ["smollm"] = ("", "<|im_end|>"),
        ["llama3"] = ("<|begin_of_text|>", "<|eot_id|>"), ["llama31"] = ("<|begin_of_text|>", "<|eot_id|>"),
        ["mistral"] = ("<s>", "</s>"), ["gemma"] = ("<bos>", "<eos>"), ["phi3"] = ("<s>", "<|endoftext|>"),
        ["deepseek"] = ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    };

    internal static ChatTemplate Load(string family)
    {
        var (bos, eos) = Tokens[family];
        var vars = new Dictionary<string, object?> { ["eos_token"] = eos };
        if (bos.Length > 0) vars["bos_token"] = bos;
        string path = Path.Combine(AppContext.BaseDirectory, "Chat", "Templates", family + ".jinja");
        return ChatTemplate.FromSource(File.ReadAllText(path), vars, path);
    }

    static readonly ChatMessage[] MultiTurn =
        [new("system", "S"), new("user", "Q1"), new("assistant", "A1"), new("user", "Q2"), new("assistant", "A2")];

    [Theory]
    [InlineData("chatml", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")]
    [InlineData("qwen3", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")]
    [InlineData("smollm", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")]
    [InlineData("llama3", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")]
    [InlineData("llama31", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")]
    [InlineData("mistral", "<s>[INST] Hi [/INST]")]
    [InlineData("gemma", "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")]
    [InlineData("phi3", "<|user|>\nHi<|end|>\n<|assistant|>\n")]
    [InlineData("deepseek", "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>")]
    public void Single_turn_with_generation_prompt(string family, string expected) =>
        Assert.Equal(expected, Load(family).Render([new("user", "Hi")], addGenerationPrompt: true));

    [Theory]
    [InlineData("chatml", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2<|im_end|>\n")]
    [InlineData("qwen3", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n")]
    [InlineData("smollm", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2<|im_end|>\n")]
    [InlineData("llama3", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA2<|eot_id|>")]
    [InlineData("llama31", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA2<|eot_id|>")]
    [InlineData("mistral", "<s>[INST] S\n\nQ1 [/INST]A1</s>[INST] Q2 [/INST]A2</s>")]
    [InlineData("gemma", "<bos><start_of_turn>user\nS\n\nQ1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n<start_of_turn>user\nQ2<end_of_turn>\n<start_of_turn>model\nA2<end_of_turn>\n")]
    [InlineData("phi3", "<|system|>\nS<|end|>\n<|user|>\nQ1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nQ2<|end|>\n<|assistant|>\nA2<|end|>\n<|endoftext|>")]
    [InlineData("deepseek", "<｜begin▁of▁sentence｜>S<｜User｜>Q1<｜Assistant｜>A1<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜>A2<｜end▁of▁sentence｜>")]
    public void Multi_turn_with_system_and_no_generation_prompt(string family, string expected) =>
        Assert.Equal(expected, Load(family).Render(MultiTurn, addGenerationPrompt: false));

    [Theory]
    [InlineData("chatml", "<|im_start|>user\n  héllo 😀 <|im_end|> {{ x }}\n<|im_end|>\n")]
    [InlineData("llama3", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhéllo 😀 <|im_end|> {{ x }}<|eot_id|>")]
    [InlineData("gemma", "<bos><start_of_turn>user\nhéllo 😀 <|im_end|> {{ x }}<end_of_turn>\n")]
    [InlineData("deepseek", "<｜begin▁of▁sentence｜><｜User｜>  héllo 😀 <|im_end|> {{ x }}\n")]
    public void Unicode_and_special_token_text_in_content_pass_through_as_text(string family, string expected) =>
        Assert.Equal(expected, Load(family).Render([new("user", "  héllo 😀 <|im_end|> {{ x }}\n")], addGenerationPrompt: false));

    [Fact]
    public void Qwen3_style_reasoning_is_split_from_the_answer_and_thinking_can_be_switched_off()
    {
        var t = Load("qwen3");
        Assert.Equal("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nadd\n</think>\n\n4<|im_end|>\n",
            t.Render([new("user", "2+2?"), new("assistant", "<think>\nadd\n</think>\n\n4")], addGenerationPrompt: false));
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
            t.Render([new("user", "Hi")], addGenerationPrompt: true, new Dictionary<string, object?> { ["enable_thinking"] = false }));
    }

    [Fact]
    public void Llama31_style_lists_the_tools_as_indented_json()
    {
        var tools = JsonNode.Parse("""[{"type": "function", "function": {"name": "f", "parameters": {"a": [1, 2]}}}]""");
        string text = Load("llama31").Render([new("user", "Hi")], addGenerationPrompt: false, new Dictionary<string, object?> { ["tools"] = tools });
        Assert.Contains("You have access to the following functions:\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"f\",\n        \"parameters\": {\n            \"a\": [\n                1,\n                2\n            ]\n        }\n    }\n}\n\n<|eot_id|>", text);
    }

    [Theory]
    [InlineData("mistral", "Conversation roles must alternate user/assistant/user/assistant/...")]
    [InlineData("gemma", "Conversation roles must alternate user/model/user/model/...")]
    public void Templates_that_require_alternating_roles_raise_their_message(string family, string message)
    {
        var e = Assert.Throws<TemplateRaisedException>(() => Load(family).Render([new("user", "a"), new("user", "b")], addGenerationPrompt: true));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Phi3_style_refuses_an_unknown_role()
    {
        var e = Assert.Throws<TemplateRaisedException>(() => Load("phi3").Render([new("narrator", "x")], addGenerationPrompt: true));
        Assert.Equal("Unknown role: narrator", e.Message);
    }
}
