using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
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
