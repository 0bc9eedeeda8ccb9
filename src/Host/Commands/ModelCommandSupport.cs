using System.CommandLine;
using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Lora;
using Rlft.Policy.Quantization;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;

namespace Rlft.Host.Commands;

/// <summary>What the model commands share: opening a checkpoint directory and turning library errors into one line.</summary>
static class ModelCommandSupport
{
    /// <summary>Runs <paramref name="body"/>, reporting bad files, JSON and arguments as a <see cref="CliException"/>.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or InvalidDataException or ArgumentException or IOException)
        {
            throw new CliException(e.Message);
        }
    }

    public static (CausalLM Model, HfTokenizer Tokenizer) Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new CliException($"model directory not found: {dir}");
        var tokenizer = HfTokenizer.Load(dir);
        var model = Checkpoint.Load(dir);
        return (model, tokenizer);
    }

    /// <summary>--quantize and --adapter, shared by the commands that run a model.</summary>
    public static (Option<string?> Quantize, Option<string?> Adapter) InspectionOptions()
    {
        var quantize = new Option<string?>("--quantize")
        {
            Description = "Quantize the projections at load: nf4, int8 or none (default: the directory's quantization_config.json, as a QLoRA checkpoint's policy/ has, else none).",
        };
        quantize.AcceptOnlyFromAmong("nf4", "int8", "none");
        var adapter = new Option<string?>("--adapter") { Description = "A PEFT LoRA adapter directory to apply (a checkpoint's policy-adapter/)." };
        return (quantize, adapter);
    }

    /// <summary>
    /// Opens a model as <see cref="Open(string)"/>, quantized as <paramref name="quantize"/> asks (or as the directory's
    /// quantization_config.json says), with the adapters of <paramref name="adapterDir"/> attached.
    /// </summary>
    public static (CausalLM Model, HfTokenizer Tokenizer) Open(string dir, string? quantize, string? adapterDir)
    {
        if (!Directory.Exists(dir)) throw new CliException($"model directory not found: {dir}");
        if (adapterDir is not null && !Directory.Exists(adapterDir)) throw new CliException($"adapter directory not found: {adapterDir}");
        var saved = QuantizationOptions.Load(dir);
        var options = quantize switch
        {
            null => saved,
            "none" => null,
            _ => (saved ?? new QuantizationOptions()) with { Kind = quantize == "nf4" ? QuantizationKind.Nf4 : QuantizationKind.Int8, DoubleQuant = quantize == "nf4" && (saved?.DoubleQuant ?? true) },
        };
        var tokenizer = HfTokenizer.Load(dir);
        var model = options is { Enabled: true } ? ModelQuantizer.Load(dir, options) : Checkpoint.Load(dir);
        if (adapterDir is not null)
        {
            try { LoraAdapters.Load(model, adapterDir); }
            catch { model.Dispose(); throw; }
        }
        return (model, tokenizer);
    }

    /// <summary>Prompt ids for generation: the post-processor's prefix (BOS) and the prompt; an empty prompt is BOS (or EOS).</summary>
    public static int[] EncodePrompt(ITokenizer tokenizer, string prompt) => new ExampleEncoder(tokenizer).Prompt(prompt);

    /// <summary>
    /// A prompt and completion encoded as one text (as the model sees them), split where the completion starts; the
    /// completion's tokens are the ones scored. No EOS is added.
    /// </summary>
    public static (int[] Prompt, int[] Completion) EncodePair(ITokenizer tokenizer, string prompt, string completion)
    {
        var example = new ExampleEncoder(tokenizer).PromptCompletion(prompt, completion, appendEos: false);
        return (example.Prompt, example.Completion);
    }
}
