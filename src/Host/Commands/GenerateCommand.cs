using System.CommandLine;
using Rlft.Policy.Generation;

namespace Rlft.Host.Commands;

/// <summary>`rlft generate`: print one completion of a prompt.</summary>
public static class GenerateCommand
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
        var (quantize, adapter) = ModelCommandSupport.InspectionOptions();
        var command = new Command("generate", "Print a completion of a prompt.") { model, prompt, maxNew, temperature, topK, topP, seed, quantize, adapter };
        command.SetAction(result => ModelCommandSupport.Guard(() =>
        {
            var (lm, tokenizer) = ModelCommandSupport.Open(result.GetValue(model)!, result.GetValue(quantize), result.GetValue(adapter));
            using (lm)
            using (tokenizer)
            {
                var options = new GenerationOptions
                {
                    MaxNewTokens = result.GetValue(maxNew), Temperature = result.GetValue(temperature),
                    TopK = result.GetValue(topK), TopP = result.GetValue(topP), Seed = result.GetValue(seed),
                };
                var ids = ModelCommandSupport.EncodePrompt(tokenizer, result.GetValue(prompt)!);
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
