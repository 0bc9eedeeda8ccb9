using System.Text.Json.Nodes;
using Rlft.Policy.Chat;
using Rlft.Policy.Tokenization;

namespace Rlft.Tests.Chat;

/// <summary>Examples are encoded as the model sees them; the masks select exactly what the model should learn.</summary>
public class ExampleEncoderTests
{
    static readonly Lazy<HfTokenizer> SentencePiece = new(() => HfTokenizer.Load(TestTokenizers.SentencePieceWithBos()));
    static readonly Lazy<HfTokenizer> ByteLevel = new(() => HfTokenizer.Load(TestTokenizers.ByteLevelChatMl()));

    static ExampleEncoder Chat(string template) => new(ByteLevel.Value, ChatTemplate.FromSource(template, new Dictionary<string, object?> { ["eos_token"] = "<|endoftext|>" }));

    /// <summary>The text of each run of loss-carrying tokens, special tokens written out.</summary>
    static List<string> LossRuns(EncodedExample e, ITokenizer tok)
    {
        var runs = new List<string>();
        for (int i = 0; i < e.Ids.Length; i++)
        {
            if (!e.LossMask[i] || (i > 0 && e.LossMask[i - 1])) continue;
            int j = i;
            while (j < e.Ids.Length && e.LossMask[j]) j++;
            runs.Add(tok.DecodeWithSpecialTokens(e.Ids[i..j]));
        }
        return runs;
    }

    [Fact]
    public void No_bos_inside_a_completion_for_a_sentencepiece_tokenizer_with_a_bos_post_processor()
    {
        var tok = SentencePiece.Value;
        var e = new ExampleEncoder(tok).PromptCompletion("Question:", " Paris");
        // One text, one BOS in front, EOS at the end: <s> ▁Question : ▁Paris </s>.
        Assert.Equal([1, .. tok.Encode("Question: Paris", addSpecialTokens: false), 2], e.Ids);
        Assert.Single(e.Ids, 1);
        Assert.Equal([tok.Encode(" Paris", addSpecialTokens: false)[^1], 2], e.Completion);
        Assert.Equal(e.Completion.Length, e.LossTokens);
        // What encoding the completion on its own gives: a BOS and an extra "▁" inside the sequence.
        var separate = tok.Encode(" Paris");
        Assert.Equal(1, separate[0]);
        Assert.Equal(3, separate.Length);
    }

    [Fact]
    public void Joint_encoding_differs_from_separate_encoding_and_is_the_one_used()
    {
        var bl = ByteLevel.Value;
        var joint = new ExampleEncoder(bl).PromptCompletion("Hello ", "world");
        Assert.NotEqual([.. bl.Encode("Hello "), .. bl.Encode("world")], bl.Encode("Hello world"));
        Assert.Equal([.. bl.Encode("Hello world"), bl.EosId], joint.Ids);
        // The token " world" straddles the boundary (it holds the prompt's space): it belongs to the completion.
        Assert.Equal(" world", bl.Decode(joint.Completion));

        var sp = SentencePiece.Value;
        var digits = new ExampleEncoder(sp).PromptCompletion("12", "345");
        Assert.NotEqual([.. sp.Encode("12", false), .. sp.Encode("345", false)], sp.Encode("12345", false));
        Assert.Equal([1, .. sp.Encode("12345", false), 2], digits.Ids);
        Assert.Equal(1, digits.PromptLength);   // the first token "▁1234" already straddles: the context is BOS alone
    }

    [Fact]
    public void Eos_is_appended_only_when_the_text_does_not_end_with_an_end_token()
    {
        var bl = ByteLevel.Value;
        var encoder = new ExampleEncoder(bl);
        var closed = encoder.PromptCompletion("Hi", " there<|endoftext|>");
        Assert.Single(closed.Ids, bl.EosId);
        Assert.Equal(bl.EosId, closed.Ids[^1]);
        Assert.True(closed.LossMask[^1]);
        var open = encoder.PromptCompletion("Hi", " there");
        Assert.Equal([.. bl.Encode("Hi there"), bl.EosId], open.Ids);
        Assert.All(open.CompletionMask, Assert.True);
        Assert.Equal(open.Ids[..^1], encoder.PromptCompletion("Hi", " there", appendEos: false).Ids);
    }

    [Fact]
    public void An_empty_prompt_starts_from_a_context_token()
    {
        var bl = ByteLevel.Value;
        var e = new ExampleEncoder(bl).PromptCompletion("", "Hello");
        Assert.Equal([bl.EosId, .. bl.Encode("Hello"), bl.EosId], e.Ids);
        Assert.Equal(1, e.PromptLength);
        var sp = new ExampleEncoder(SentencePiece.Value).PromptCompletion("", "Hello");
        Assert.Equal(1, sp.Ids[0]);
        Assert.Equal(1, sp.PromptLength);
    }

    [Fact]
    public void Multi_turn_loss_covers_exactly_the_assistant_contents_and_their_end_of_turn_tokens()
    {
        var encoder = Chat(TestTokenizers.ChatMlTemplate);
        ChatMessage[] messages =
        [
            new("system", "You are brief."), new("user", "What is 2+3?"), new("assistant", "It is 5."),
            new("user", "And <|im_end|> 2+4? 😀"), new("assistant", " Six, or 6.\n"),
        ];
        var e = encoder.Conversation(messages);
        string text = encoder.Template!.Render(messages, addGenerationPrompt: false);
        Assert.Equal(ByteLevel.Value.Encode(text, addSpecialTokens: false), e.Ids);   // nothing added: the template closed the last turn
        Assert.Equal(["It is 5.<|im_end|>", " Six, or 6.\n<|im_end|>"], LossRuns(e, ByteLevel.Value));
        Assert.Equal(ByteLevel.Value.Encode(encoder.Template.Render(messages[..2], addGenerationPrompt: true), false).Length, e.PromptLength);
    }

    [Fact]
    public void Conversational_prompt_and_completion_learn_only_the_completions_assistant_turns()
    {
        var encoder = Chat(TestTokenizers.ChatMlTemplate);
        ChatMessage[] prompt = [new("user", "Hi"), new("assistant", "Hello."), new("user", "Name a colour.")];
        var e = encoder.Conversation(prompt, [new("assistant", "Blue.")]);
        Assert.Equal(["Blue.<|im_end|>"], LossRuns(e, ByteLevel.Value));
        Assert.Equal(encoder.ChatPrompt(prompt), e.Prompt);
        Assert.Equal(ByteLevel.Value.Encode(encoder.Template!.Render(prompt, addGenerationPrompt: true), false), encoder.ChatPrompt(prompt));
    }

    [Fact]
    public void Generation_blocks_give_the_spans_when_the_template_has_them()
    {
        const string template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}{% else %}{{ m.content }}<|im_end|>{% endif %}\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        var e = Chat(template).Conversation([new("user", "a"), new("assistant", "b"), new("user", "c"), new("assistant", "d")]);
        Assert.Equal(["b<|im_end|>", "d<|im_end|>"], LossRuns(e, ByteLevel.Value));
    }

    [Fact]
    public void A_template_that_is_not_prefix_stable_is_refused_with_the_reason()
    {
        string qwen3 = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Chat", "Templates", "qwen3.jinja"));
        var encoder = Chat(qwen3);
        // One turn is fine: the empty think block of the last turn is learned with it.
        var single = encoder.Conversation([new("user", "2+2?"), new("assistant", "4")]);
        Assert.Equal(["<think>\n\n</think>\n\n4<|im_end|>"], LossRuns(single, ByteLevel.Value));
        // Two turns: the first assistant turn renders without its think block once a later query exists.
        var e = Assert.Throws<ExampleEncodingException>(() => encoder.Conversation([new("user", "a"), new("assistant", "b"), new("user", "c"), new("assistant", "d")]));
        Assert.StartsWith("the chat template is not prefix-stable: messages[0..2) rendered without the generation prompt is not a prefix of the whole conversation", e.Message);
    }

    [Fact]
    public void A_template_without_end_of_turn_tokens_gets_eos_and_text_after_a_closed_turn_is_refused()
    {
        var plain = Chat("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}");
        var e = plain.Conversation([new("user", "Hi"), new("assistant", "Hello"), new("user", "Bye"), new("assistant", "Ciao")]);
        // " Hello" is one token holding the header's space: a straddling token starts the span.
        Assert.Equal([" Hello\n", "Ciao\n<|endoftext|>"], LossRuns(e, ByteLevel.Value).Select(r => r.StartsWith(" C") ? r[1..] : r));

        var llama30 = Chat("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}<|im_start|>assistant\n");
        var refused = Assert.Throws<ExampleEncodingException>(() => llama30.Conversation([new("user", "Hi"), new("assistant", "Hello")]));
        Assert.StartsWith("the chat template writes \"<|im_start|>assistant\" after the end of an assistant turn", refused.Message);
    }

    [Fact]
    public void Conversational_data_without_a_template_or_an_assistant_turn_is_refused()
    {
        var none = new ExampleEncoder(ByteLevel.Value);
        Assert.StartsWith("conversational data needs a chat template", Assert.Throws<ExampleEncodingException>(() => none.Conversation([new("user", "a"), new("assistant", "b")])).Message);
        var chat = Chat(TestTokenizers.ChatMlTemplate);
        Assert.Equal("no assistant message to learn from", Assert.Throws<ExampleEncodingException>(() => chat.Conversation([new("user", "a")])).Message);
    }

    [Fact]
    public void End_tokens_come_from_the_template_the_tokenizer_and_the_generation_config()
    {
        string dir = TestTokenizers.ByteLevelChatMl();
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), """{"eos_token_id": [398, 7]}""");
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"eos_token_id": 9}""");
        using var tok = HfTokenizer.Load(dir);
        var template = ChatTemplate.Load(dir);
        Assert.Equal("<|im_end|>", EndTokens.EndOfTurn(template, tok));
        int imEnd = tok.SpecialTokens["<|im_end|>"];
        Assert.Equal(new[] { 7, 9, 398, tok.EosId, imEnd }.Distinct().Order(), EndTokens.ForModel(dir, tok, template));
        Assert.Contains(imEnd, new ExampleEncoder(tok, template).EndIds);
        Assert.Null(EndTokens.EndOfTurn(ChatTemplate.FromSource("{% for m in messages %}{{ m.content }}{% endfor %}"), tok));
    }
}
