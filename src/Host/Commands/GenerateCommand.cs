using System.CommandLine;
using Rlft.Policy.Chat;
using Rlft.Policy.Generation;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft generate`: print one completion of a prompt. Generation stops on any of the model's end tokens
/// (generation_config.json's eos list, config.json's, the tokenizer's EOS, the chat template's end of turn); with
/// <c>--chat</c> the prompt is a user message rendered with the model's chat template (or <c>--chat-template FILE</c>)
/// and the generation prompt, as a chat model sees it in an online stage.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (HF layout).", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text.", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate at most (default 64).", DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 = greedy (default 1).", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens; 0 = off.", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus probability; 1 = off.", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long?>("--seed") { Description = "Sampling seed (reproducible output)." };
        var chat = new Option<bool>("--chat") { Description = "The prompt is a user message: render it with the chat template and the generation prompt." };
        var template = new Option<string?>("--chat-template") { Description = "A Jinja chat template file instead of the model's own (with --chat)." };
        var (quantize, adapter) = ModelCommandSupport.InspectionOptions();
        var command = new Command("generate", "Print a completion of a prompt.") { model, prompt, maxNew, temperature, topK, topP, seed, chat, template, quantize, adapter };
        command.SetAction(result => ModelCommandSupport.Guard(() =>
        {
            string dir = result.GetValue(model)!;
            if (result.GetValue(template) is not null && !result.GetValue(chat)) throw new CliException("--chat-template: only with --chat");
            if (result.GetValue(template) is { } given && !File.Exists(given)) throw new CliException($"--chat-template: file not found: {given}");
            ChatTemplate? chatTemplate = null;
            if (result.GetValue(chat))
            {
                try { chatTemplate = ChatTemplate.Load(dir, result.GetValue(template)); }
                catch (ChatTemplateException e) { throw new CliException($"--chat: {e.Message}"); }
            }
            else if (Directory.Exists(dir))
            {
                try { chatTemplate = ChatTemplate.TryLoad(dir); }
                catch (ChatTemplateException) { }   // a template only names the end-of-turn token here; a broken one does not stop plain generation
            }
            var (lm, tokenizer) = ModelCommandSupport.Open(dir, result.GetValue(quantize), result.GetValue(adapter));
            using (lm)
            using (tokenizer)
            {
                var options = new GenerationOptions
                {
                    MaxNewTokens = result.GetValue(maxNew), Temperature = result.GetValue(temperature),
                    TopK = result.GetValue(topK), TopP = result.GetValue(topP), Seed = result.GetValue(seed),
                    StopTokenIds = EndTokens.ForModel(dir, tokenizer, chatTemplate),
                };
                var ids = result.GetValue(chat)
                    ? new ExampleEncoder(tokenizer, chatTemplate).ChatPrompt([new ChatMessage("user", result.GetValue(prompt)!)])
                    : ModelCommandSupport.EncodePrompt(tokenizer, result.GetValue(prompt)!);
                if (ids.Length + options.MaxNewTokens > lm.Config.MaxPositions)
                    throw new CliException($"prompt ({ids.Length} tokens) + --max-new-tokens ({options.MaxNewTokens}) exceeds the model's {lm.Config.MaxPositions} positions");
                var output = TextGenerator.Generate(lm, [ids], options, tokenizer.PadId, tokenizer.EosId);
                result.InvocationConfiguration.Output.WriteLine(tokenizer.Decode(output.Tokens[0]));
            }
            return 0;
        }));
        return command;
    }
}
