using Rlft.Policy.Chat;
using Rlft.Policy.Tokenization;
using Rlft.Rollout.Data;
using Rlft.Tests.Chat;
using Rlft.Tests.Policy;

namespace Rlft.Tests.Rollout;

/// <summary>Every TRL format reads into the right record, and bad data is one line naming file, line and field.</summary>
public class DatasetFormatTests
{
    static string File(params string[] lines)
    {
        string path = Path.Combine(TinyModels.TempDir(), "data.jsonl");
        System.IO.File.WriteAllLines(path, lines);
        return path;
    }

    static readonly ChatMessage U = new("user", "Hi"), A = new("assistant", "Hello."), S = new("system", "Be brief.");

    [Fact]
    public void Sft_reads_messages_conversational_and_plain_prompt_completion()
    {
        string path = File(
            """{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}], "id": 7}""",
            """{"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello."}]}""",
            "",
            """{"prompt": "Hi", "completion": " Hello."}""");
        Assert.Empty(DatasetFormats.Check(path, DataKind.Sft));
        var records = DatasetFormats.ReadSft(path);
        Assert.Equal([S, U, A], Assert.IsType<MessagesSftRecord>(records[0]).Messages);
        var chat = Assert.IsType<ChatSftRecord>(records[1]);
        Assert.Equal([U], chat.Prompt);
        Assert.Equal([A], chat.Completion);
        Assert.Equal(new TextSftRecord($"{path}:4", "Hi", " Hello."), records[2]);
    }

    [Fact]
    public void Preferences_read_explicit_implicit_and_plain_prompts()
    {
        string path = File(
            """{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello."}], "rejected": [{"role": "assistant", "content": "Go away."}]}""",
            """{"chosen": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}], "rejected": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]}""",
            """{"prompt": "Hi", "chosen": " Hello.", "rejected": " Go away."}""");
        var records = DatasetFormats.ReadPreferences(path);
        var explicitPrompt = Assert.IsType<ChatPreferenceRecord>(records[0]);
        Assert.Equal([U], explicitPrompt.Prompt);
        var implicitPrompt = Assert.IsType<ChatPreferenceRecord>(records[1]);
        Assert.Equal([S, U], implicitPrompt.Prompt);
        Assert.Equal([A], implicitPrompt.Chosen);
        Assert.Equal([new ChatMessage("assistant", "Go away.")], implicitPrompt.Rejected);
        Assert.Equal(new TextPreferenceRecord($"{path}:3", "Hi", " Hello.", " Go away."), records[2]);
    }

    [Fact]
    public void Preferences_carry_the_feedback_exports_soft_label_and_weight_and_refuse_bad_ones()
    {
        string path = File(
            """{"prompt": "Hi", "chosen": " Hello.", "rejected": " Go away.", "label": 0.75, "weight": 2}""",
            """{"prompt": "Hi", "chosen": " Hello.", "rejected": " Go away."}""");
        var records = DatasetFormats.ReadPreferences(path);
        Assert.Equal((0.75, 2.0), (records[0].Target, records[0].Weight));
        Assert.Equal((1.0, 1.0), (records[1].Target, records[1].Weight));

        string bad = File(
            """{"prompt": "Hi", "chosen": " a", "rejected": " b", "label": 0.3}""",
            """{"prompt": "Hi", "chosen": " a", "rejected": " b", "label": true}""",
            """{"prompt": "Hi", "chosen": " a", "rejected": " b", "weight": 0}""",
            """{"prompt": "Hi", "chosen": " a", "rejected": " b", "label": 1.5, "weight": -1}""");
        Assert.Equal([
            $"{bad}:1: label: 0.3 is not P(chosen ≻ rejected) between 0.5 (a tie) and 1",
            $"{bad}:2: label: expected a number (P(chosen ≻ rejected) between 0.5 (a tie) and 1), got a boolean",
            $"{bad}:3: weight: 0 is not a positive weight",
            $"{bad}:4: label: 1.5 is not P(chosen ≻ rejected) between 0.5 (a tie) and 1",
            $"{bad}:4: weight: -1 is not a positive weight",
        ], DatasetFormats.Check(bad, DataKind.Preferences));
    }

    [Fact]
    public void Prompts_read_plain_and_conversational_with_answers()
    {
        string path = File("""{"prompt": "2+3?", "answer": "5"}""", """{"prompt": [{"role": "user", "content": "2+3?"}], "answer": "5"}""", """{"prompt": "x"}""");
        var records = DatasetFormats.ReadPrompts(path);
        Assert.Equal(new TextPromptRecord($"{path}:1", "2+3?", "5"), records[0]);
        Assert.Equal([new ChatMessage("user", "2+3?")], Assert.IsType<ChatPromptRecord>(records[1]).Prompt);
        Assert.Equal("5", records[1].Answer);
        Assert.Null(records[2].Answer);
    }

    [Theory]
    // messages
    [InlineData(DataKind.Sft, """{"messages": [{"content": "Hi"}, {"role": "assistant", "content": "x"}]}""", "messages[0].role: missing")]
    [InlineData(DataKind.Sft, """{"messages": [{"role": "narrator", "content": "Hi"}, {"role": "assistant", "content": "x"}]}""", "messages[0].role: unknown role \"narrator\" (expected system, user, assistant or tool)")]
    [InlineData(DataKind.Sft, """{"messages": [{"role": "user", "content": ["Hi"]}, {"role": "assistant", "content": "x"}]}""", "messages[0].content: expected a string, got a list")]
    [InlineData(DataKind.Sft, """{"messages": []}""", "messages: empty list")]
    [InlineData(DataKind.Sft, """{"messages": "Hi"}""", "messages: expected a list of messages, got a string")]
    [InlineData(DataKind.Sft, """{"messages": [{"role": "user", "content": "Hi"}]}""", "messages: no assistant message to learn from")]
    [InlineData(DataKind.Sft, """{"messages": [7]}""", "messages[0]: expected a message object, got a number")]
    [InlineData(DataKind.Sft, """{"messages": [{"role": "assistant", "content": "x", "tool_calls": []}]}""", "messages[0].tool_calls: not supported (a message has \"role\" and \"content\")")]
    [InlineData(DataKind.Sft, """{"text": "Hi"}""", "messages: missing (an SFT line has \"messages\", or \"prompt\" and \"completion\")")]
    // prompt/completion
    [InlineData(DataKind.Sft, """{"prompt": [{"role": "user", "content": "Hi"}], "completion": "Hello"}""", "completion: expected a list of messages, got a string")]
    [InlineData(DataKind.Sft, """{"prompt": [{"role": "user", "content": 3}], "completion": [{"role": "assistant", "content": "x"}]}""", "prompt[0].content: expected a string, got a number")]
    [InlineData(DataKind.Sft, """{"prompt": "Hi"}""", "completion: missing")]
    [InlineData(DataKind.Sft, """{"prompt": "Hi", "completion": 5}""", "completion: expected a string, got a number")]
    // preferences
    [InlineData(DataKind.Preferences, """{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant"}], "rejected": [{"role": "assistant", "content": "b"}]}""", "chosen[0].content: missing")]
    [InlineData(DataKind.Preferences, """{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [], "rejected": [{"role": "assistant", "content": "b"}]}""", "chosen: empty list")]
    [InlineData(DataKind.Preferences, """{"chosen": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "a"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "b"}]}""", "chosen[1].role: unknown role \"bot\" (expected system, user, assistant or tool)")]
    [InlineData(DataKind.Preferences, """{"prompt": "Hi", "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}""", "prompt: expected a list of messages, got a string")]
    [InlineData(DataKind.Preferences, """{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "a"}]}""", "rejected: the same conversation as chosen")]
    [InlineData(DataKind.Preferences, """{"chosen": "a", "rejected": "b"}""", "prompt: missing")]
    [InlineData(DataKind.Preferences, """{"prompt": "Hi", "chosen": "a", "rejected": null}""", "rejected: expected a string, got null")]
    // prompts
    [InlineData(DataKind.Prompts, """{"prompt": []}""", "prompt: empty list")]
    [InlineData(DataKind.Prompts, """{"prompt": [{"role": "user", "content": {"text": "Hi"}}]}""", "prompt[0].content: expected a string, got an object")]
    [InlineData(DataKind.Prompts, """{"prompt": 12}""", "prompt: expected a string or a list of messages, got a number")]
    [InlineData(DataKind.Prompts, """{"prompt": "2+3?", "answer": 5}""", "answer: expected a string, got a number")]
    [InlineData(DataKind.Prompts, """{"question": "2+3?"}""", "prompt: missing")]
    public void Bad_data_is_one_line_naming_file_line_and_field(DataKind kind, string line, string problem)
    {
        string path = File("""{"prompt": "fine", "completion": "x", "chosen": "a", "rejected": "b"}""", line);
        var errors = DatasetFormats.Check(path, kind);
        Assert.Equal($"{path}:2: {problem}", Assert.Single(errors));
    }

    [Fact]
    public void Lines_that_are_not_json_objects_or_not_utf8_are_reported_and_the_rest_still_checked()
    {
        string path = Path.Combine(TinyModels.TempDir(), "data.jsonl");
        System.IO.File.WriteAllBytes(path, [
            .. "{\"prompt\": \"ok\"}\n"u8, .. "[1, 2]\n"u8, .. "{ broken\n"u8, 0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D, (byte)'\n',
            .. "{\"prompt\": 3}\r\n"u8,
        ]);
        Assert.Equal(
        [
            $"{path}:2: expected a JSON object",
            $"{path}:3: invalid JSON ('b' is an invalid start of a property name)",
            $"{path}:4: invalid UTF-8",
            $"{path}:5: prompt: expected a string or a list of messages, got a number",
        ], DatasetFormats.Check(path, DataKind.Prompts));
        var e = Assert.Throws<DatasetException>(() => DatasetFormats.ReadPrompts(path));
        Assert.Equal($"{path}:2: expected a JSON object (and 3 more problems in the file)", e.Message);
        Assert.Equal($"{path}.missing: dataset file not found", Assert.Single(DatasetFormats.Check(path + ".missing", DataKind.Sft)));
        string empty = File("", "  ");
        Assert.Equal($"{empty}: no records (an empty dataset)", Assert.Single(DatasetFormats.Check(empty, DataKind.Sft)));
    }

    [Fact]
    public void Encoding_a_record_the_template_cannot_mask_names_its_line()
    {
        string qwen3 = System.IO.File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Chat", "Templates", "qwen3.jinja"));
        using var tok = HfTokenizer.Load(TestTokenizers.ByteLevelChatMl());
        var encoder = new ExampleEncoder(tok, ChatTemplate.FromSource(qwen3));
        string path = File(
            """{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}""",
            """{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}""");
        var records = DatasetFormats.ReadSft(path);
        Assert.True(records[0].Encode(encoder).LossTokens > 0);
        var e = Assert.Throws<DatasetException>(() => records[1].Encode(encoder));
        Assert.StartsWith($"{path}:2: the chat template is not prefix-stable", e.Message);
    }
}
