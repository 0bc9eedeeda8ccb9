using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;

namespace Rlft.Policy.Checkpoints;

/// <summary>
/// Checks a Hugging Face model directory before anything loads it: the config parses and names an architecture
/// RLFT builds; the weights exist, are complete, and hold exactly the tensors (names and shapes) that config
/// implies, read from the safetensors headers (or pytorch_model.bin's pickle) without loading any data; the tokenizer loads and its ids fit the
/// model's vocabulary. Every problem is one line naming the file.
/// </summary>
internal static partial class ModelDirectory
{
    /// <summary>The problems found (empty when the directory is usable); <paramref name="config"/> is set when config.json parsed.</summary>
    public static List<string> Check(string dir, out ModelConfig? config, bool needsTokenizer = true)
    {
        config = null;
        var problems = new List<string>();
        if (!Directory.Exists(dir))
        {
            problems.Add(File.Exists(dir) ? $"{dir}: is a file, not a model directory" : $"{dir}: no such model directory");
            return problems;
        }
        var parsed = config = Try(problems, () => ModelConfig.Load(Path.Combine(dir, Checkpoint.ConfigFile)));
        var shapes = Try(problems, () => Checkpoint.ReadShapes(dir));
        if (parsed is not null && shapes is not null)
        {
            var model = Try(problems, () => ModelFactory.CreateMeta(parsed));
            if (model is not null)
            {
                using (model)
                {
                    var expected = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
                    Try(problems, () => Checkpoint.Match(expected, shapes, dir, key => Checkpoint.IsIgnorable(key, parsed)));
                }
            }
        }
        if (needsTokenizer) problems.AddRange(CheckTokenizer(dir, parsed));
        return problems;
    }

    /// <summary>The tokenizer loads, and no id it can produce is outside the model's embedding table.</summary>
    public static List<string> CheckTokenizer(string dir, ModelConfig? config)
    {
        var problems = new List<string>();
        string file = Path.Combine(dir, "tokenizer.json");
        if (!File.Exists(file)) { problems.Add($"{file}: missing (RLFT reads the Hugging Face tokenizer.json)"); return problems; }
        using var tokenizer = Try(problems, () => HfTokenizer.Load(dir));
        if (tokenizer is not null && config is not null && VocabularyProblem(tokenizer, config, file) is { } vocab) problems.Add(vocab);
        return problems;
    }

    /// <summary>Null when every id of <paramref name="tokenizer"/> indexes the model's embeddings; else the one-line reason.</summary>
    public static string? VocabularyProblem(ITokenizer tokenizer, ModelConfig config, string source) =>
        tokenizer.VocabSize > config.VocabSize
            ? $"{source}: the tokenizer's largest id is {tokenizer.VocabSize - 1}, but the model's vocab_size is {config.VocabSize} (config.json): ids from {config.VocabSize} on have no embedding"
            : null;

    static T? Try<T>(List<string> problems, Func<T> read) where T : class
    {
        try { return read(); }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or IOException or UnauthorizedAccessException
                                     or System.Text.Json.JsonException or InvalidOperationException or ArgumentException or FormatException)
        {
            problems.Add(e.Message);
            return null;
        }
    }
}
