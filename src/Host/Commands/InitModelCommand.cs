using System.CommandLine;
using Rlft.Policy.Models;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft init-model`: a randomly initialised checkpoint in HF layout, with a BPE tokenizer trained on a corpus. The
/// published shapes (gpt2-124m, qwen2-0.5b, qwen2-1.5b, llama3-1b) imply their architecture and are written tensor by
/// tensor, so the memory needed grows with the embedding matrix, not the model.
/// </summary>
public static class InitModelCommand
{
    public static Command Create()
    {
        var arch = new Option<string?>("--arch") { Description = "Architecture: gpt2, llama, qwen2, qwen3, gemma2, gemma3 (model_type gemma3_text) or phi3; implied by a published shape." };
        arch.AcceptOnlyFromAmong(ModelPresets.Architectures);
        var preset = new Option<string>("--preset")
        {
            Description = "Size: tiny (2 layers × d64) or small (4 layers × d256) of --arch; or a published shape with random weights: " +
                          "gpt2-124m, qwen2-0.5b, qwen2-1.5b, llama3-1b (vocabulary padded to the published size).",
            DefaultValueFactory = _ => "tiny",
        };
        preset.AcceptOnlyFromAmong(ModelPresets.Presets);
        var output = new Option<string>("--out") { Description = "Directory to write config.json, model.safetensors, tokenizer.json.", Required = true };
        var seed = new Option<long>("--seed") { Description = "Initialisation seed (default 0).", DefaultValueFactory = _ => 0 };
        var corpus = new Option<string?>("--vocab-corpus") { Description = "Text file to train the tokenizer on (default: the built-in corpus)." };
        var vocab = new Option<int?>("--vocab-size") { Description = "Tokenizer vocabulary size (default 512 tiny, 2048 otherwise)." };
        var command = new Command("init-model", "Write a randomly initialised model in Hugging Face layout.") { arch, preset, output, seed, corpus, vocab };
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
            string presetName = result.GetValue(preset)!;
            string architecture;
            try { architecture = ModelPresets.ResolveArchitecture(result.GetValue(arch), presetName); }
            catch (ArgumentException e) { throw new CliException($"--arch: {e.Message}"); }
            var c = ModelPresets.Write(architecture, presetName, dir, result.GetValue(seed), text, result.GetValue(vocab));
            long parameters;
            using (var meta = ModelFactory.CreateMeta(c)) parameters = meta.ParameterCount();
            result.InvocationConfiguration.Output.WriteLine(
                $"wrote {c.ModelType} ({c.NumLayers} layers, hidden {c.HiddenSize}, vocab {c.VocabSize}, {parameters:N0} parameters) to {dir}");
            return 0;
        }));
        return command;
    }
}
