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

    /// <summary>Prompt ids; an empty prompt becomes the BOS (or EOS) token so the first completion token has a context.</summary>
    public static int[] EncodePrompt(ITokenizer tokenizer, string prompt)
    {
        var ids = tokenizer.Encode(prompt);
        return ids.Length > 0 ? ids : [tokenizer.BosId ?? tokenizer.EosId];
    }

    /// <summary>Completion ids without the BOS a post-processor may prepend.</summary>
    public static int[] EncodeCompletion(ITokenizer tokenizer, string completion)
    {
        var ids = tokenizer.Encode(completion);
        return tokenizer.BosId is int bos && ids.Length > 0 && ids[0] == bos ? ids[1..] : ids;
    }
}
