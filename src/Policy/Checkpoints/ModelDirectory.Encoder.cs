using Rlft.Policy.Encoders;
using Rlft.Policy.Tokenization;

namespace Rlft.Policy.Checkpoints;

/// <summary>Encoder directories (bert, roberta, distilbert), checked as thoroughly as decoders, before any weight loads.</summary>
internal static partial class ModelDirectory
{
    /// <summary>
    /// The problems of an encoder directory (empty when usable). With <paramref name="exactHead"/> the weights must hold
    /// the head config.json names (a model to run as it is); without, only the body is required and another head
    /// or a pre-training head may be present (a fine-tuning start).
    /// </summary>
    public static List<string> CheckEncoder(string dir, out EncoderConfig? config, bool exactHead, bool needsTokenizer = true)
    {
        config = null;
        var problems = new List<string>();
        if (!Directory.Exists(dir))
        {
            problems.Add(File.Exists(dir) ? $"{dir}: is a file, not a model directory" : $"{dir}: no such model directory");
            return problems;
        }
        var parsed = config = Try(problems, () => EncoderConfig.Load(Path.Combine(dir, Checkpoint.ConfigFile)));
        var shapes = Try(problems, () => EncoderCheckpoint.Canonical(Checkpoint.ReadShapes(dir)));
        if (parsed is not null && shapes is not null)
        {
            using var model = EncoderCheckpoint.CreateMeta(parsed);
            var expected = model.state_dict().Where(kv => exactHead || !model.IsHeadParameter(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value.shape);
            Func<string, bool> ignore = exactHead
                ? key => EncoderCheckpoint.IsIgnorable(key, parsed)
                : key => EncoderCheckpoint.IsIgnorable(key, parsed) || EncoderCheckpoint.IsPooler(key) || !key.StartsWith(parsed.Prefix + ".", StringComparison.Ordinal) && !key.StartsWith("embeddings.", StringComparison.Ordinal)
                         && !key.StartsWith("encoder.", StringComparison.Ordinal) && !key.StartsWith("transformer.", StringComparison.Ordinal);
            Try(problems, () => Checkpoint.Match(expected, shapes, dir, ignore, [parsed.Prefix + "."]));
        }
        if (needsTokenizer)
        {
            string own = Path.Combine(dir, "tokenizer.json");
            string? file = Try(problems, () => SlowTokenizerFiles.Resolve(dir) ?? "");
            if (file == "") problems.Add($"{own}: missing (RLFT reads the Hugging Face tokenizer.json, or converts vocab.txt or vocab.json + merges.txt)");
            else if (file is not null)
            {
                using var tokenizer = Try(problems, () => HfTokenizer.Load(file));
                if (tokenizer is not null && parsed is not null && tokenizer.VocabSize > parsed.VocabSize)
                    problems.Add($"{file}: the tokenizer's largest id is {tokenizer.VocabSize - 1}, but the model's vocab_size is {parsed.VocabSize} (config.json): ids from {parsed.VocabSize} on have no embedding");
                if (tokenizer is not null) Try(problems, () => PairTemplate.FromFile(file));
            }
        }
        return problems;
    }
}
