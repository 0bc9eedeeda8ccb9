using System.Text.Json.Nodes;
using Rlft.Policy.Models;
using Rlft.Rollout.Tasks;

namespace Rlft.Tests.Chat;

/// <summary>`rlft generate` on chat models: the prompt rendered with the template (--chat), and stops on the model's end tokens.</summary>
public sealed class GenerateChatTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = Rlft.Host.Commands.Cli.Run(args, o, e);
        return (code, o.ToString().TrimEnd('\n'), e.ToString());
    }

    static string ChatModel()
    {
        string dir = Path.Combine(Directory.CreateTempSubdirectory("rlft-generate-chat").FullName, "model");
        ModelPresets.InitModel("gpt2", "tiny", dir, seed: 3, corpus: ReviewTask.TokenizerCorpus(3), chatTemplate: "chatml").Dispose();
        return dir;
    }

    [Fact]
    public void Generation_stops_on_every_id_generation_config_lists()
    {
        string dir = ChatModel();
        string[] args = ["generate", "--model", dir, "--prompt", "review the game:", "--temperature", "0", "--max-new-tokens", "24"];
        var free = Run(args);
        Assert.Equal(0, free.Code);
        // With every id of the vocabulary an end token, greedy decoding ends at its first token.
        int vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!["vocab_size"]!.GetValue<int>();
        File.WriteAllText(Path.Combine(dir, "generation_config.json"),
            new JsonObject { ["eos_token_id"] = new JsonArray(Enumerable.Range(0, vocab).Select(i => (JsonNode)i).ToArray()) }.ToJsonString());
        var stopped = Run(args);
        Assert.Equal(0, stopped.Code);
        Assert.True(stopped.Out.Length < free.Out.Length, $"'{stopped.Out}' is not shorter than '{free.Out}'");
        Assert.StartsWith(stopped.Out, free.Out);
    }

    [Fact]
    public void Chat_renders_the_prompt_as_a_user_turn_and_is_refused_without_a_template()
    {
        string dir = ChatModel();
        string[] plain = ["generate", "--model", dir, "--prompt", "review the game:", "--temperature", "0", "--max-new-tokens", "12"];
        var asText = Run(plain);
        var asChat = Run([.. plain, "--chat"]);
        Assert.Equal(0, asChat.Code);
        Assert.NotEqual(asText.Out, asChat.Out);   // the model sees "<|im_start|>user\n…<|im_end|>\n<|im_start|>assistant\n", not the bare text

        string template = Path.Combine(Path.GetDirectoryName(dir)!, "plain.jinja");
        File.WriteAllText(template, "{% for m in messages %}{{ m['content'] }}{% endfor %}");
        var overridden = Run([.. plain, "--chat", "--chat-template", template]);
        Assert.Equal(0, overridden.Code);
        Assert.Equal(asText.Out, overridden.Out);   // a template that writes only the content gives the plain prompt

        string bare = Path.Combine(Directory.CreateTempSubdirectory("rlft-generate-plain").FullName, "model");
        ModelPresets.InitModel("gpt2", "tiny", bare, seed: 3).Dispose();
        var refused = Run(["generate", "--model", bare, "--prompt", "hi", "--chat"]);
        Assert.Equal(2, refused.Code);
        Assert.Contains("--chat", refused.Err);
        Assert.DoesNotContain("   at ", refused.Err);
        Assert.Equal(2, Run(["generate", "--model", dir, "--prompt", "hi", "--chat-template", template]).Code);
    }
}
