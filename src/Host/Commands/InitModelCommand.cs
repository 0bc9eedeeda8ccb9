using System.CommandLine;
using Rlft.Policy.Models;

namespace Rlft.Host.Commands;

/// <summary>`rlft init-model`: a randomly initialised checkpoint in HF layout, with a BPE tokenizer trained on a corpus.</summary>
public static class InitModelCommand
{
    public static Command Create()
    {
        var arch = new Option<string?>("--arch") { Description = "Architecture: gpt2, llama, qwen2, qwen3, gemma2, gemma3 (model_type gemma3_text) or phi3; implied by qwen2-0.5b / qwen2-1.5b." };
        arch.AcceptOnlyFromAmong(ModelPresets.Architectures);
        var preset = new Option<string>("--preset") { Description = "Size: tiny (2 layers × d64), small (4 layers × d256), or the published shape of qwen2-0.5b / qwen2-1.5b (random weights).", DefaultValueFactory = _ => "tiny" };
        preset.AcceptOnlyFromAmong(ModelPresets.Presets);
        var output = new Option<string>("--out") { Description = "Directory to write config.json, model.safetensors, tokenizer.json.", Required = true };
        var seed = new Option<long>("--seed") { Description = "Initialisation seed (default 0).", DefaultValueFactory = _ => 0 };
        var corpus = new Option<string?>("--vocab-corpus") { Description = "Text file to train the tokenizer on (default: the built-in corpus)." };
        var vocab = new Option<int?>("--vocab-size") { Description = "Tokenizer vocabulary size (default 512 tiny, 2048 small)." };
        var template = new Option<string?>("--chat-template") { Description = "A built-in chat template for the tokenizer to carry, with its special tokens (chatml)." };
        template.AcceptOnlyFromAmong(Rlft.Policy.Chat.BuiltinChatTemplates.Names);
        var command = new Command("init-model", "Write a randomly initialised model in Hugging Face layout.") { arch, preset, output, seed, corpus, vocab, template };
        command.SetAction(result => ModelCommandSupport.Guard(() =>
        {
            string? corpusPath = result.GetValue(corpus);
            string? text = null;
            if (corpusPath is not null)
            {
                if (!File.Exists(corpusPath)) throw new CliException($"corpus file not found: {corpusPath}");
                text = File.ReadAllText(corpusPath);
            }
            string dir = result.GetValue(output)!;
            string size = result.GetValue(preset)!;
            string family = result.GetValue(arch) ?? ModelPresets.ArchitectureOf(size)
                ?? throw new CliException($"--arch is required with --preset {size} (one of {string.Join(", ", ModelPresets.Architectures)})");
            using var model = ModelPresets.InitModel(family, size, dir, result.GetValue(seed), text, result.GetValue(vocab), result.GetValue(template));
            var c = model.Config;
            result.InvocationConfiguration.Output.WriteLine(
                $"wrote {c.ModelType} ({c.NumLayers} layers, hidden {c.HiddenSize}, vocab {c.VocabSize}, {model.ParameterCount():N0} parameters) to {dir}");
            return 0;
        }));
        return command;
    }
}
