using System.Text.Json.Nodes;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;

namespace Rlft.Policy.Encoders;

/// <summary>
/// Randomly initialised encoder checkpoints the project makes itself: a WordPiece (bert, distilbert) or byte-level BPE
/// (roberta) tokenizer trained on a corpus, a config of a known size and a task head. <c>tiny</c>: 2 layers × d64,
/// 128 positions; <c>small</c>: 4 layers × d256, 512 positions.
/// </summary>
internal static class EncoderPresets
{
    public static readonly string[] Architectures = ["bert", "roberta", "distilbert"];
    /// <summary>Encoder sizes (the causal LMs' presets may name more, published shapes among them).</summary>
    public static readonly string[] Presets = ["tiny", "small"];

    public static int DefaultVocabSize(string preset) => preset == "tiny" ? 512 : 2048;

    /// <summary>Sequence positions of a preset (RoBERTa's table is padding_idx + 1 longer, as roberta-base's 514).</summary>
    public static int Positions(string preset) => preset == "tiny" ? 128 : 512;

    public static EncoderConfig Config(string arch, string preset, int vocabSize, EncoderTask task = EncoderTask.SequenceClassification,
        IReadOnlyList<string>? labels = null, ProblemType? problem = null)
    {
        if (!Presets.Contains(preset)) throw new ArgumentException($"--preset {preset}: encoder presets are {string.Join(", ", Presets)}");
        bool tiny = preset == "tiny";
        int hidden = tiny ? 64 : 256, layers = tiny ? 2 : 4, heads = tiny ? 4 : 8, positions = Positions(preset);
        JsonObject o = arch switch
        {
            "bert" or "roberta" => new JsonObject
            {
                ["model_type"] = arch, ["vocab_size"] = vocabSize, ["hidden_size"] = hidden, ["num_hidden_layers"] = layers,
                ["num_attention_heads"] = heads, ["intermediate_size"] = 4 * hidden, ["hidden_act"] = "gelu",
                ["max_position_embeddings"] = arch == "roberta" ? positions + 2 : positions, ["type_vocab_size"] = arch == "roberta" ? 1 : 2,
                ["layer_norm_eps"] = arch == "roberta" ? 1e-5 : 1e-12, ["pad_token_id"] = arch == "roberta" ? 1 : 0,
                ["hidden_dropout_prob"] = 0.0, ["attention_probs_dropout_prob"] = 0.0, ["initializer_range"] = 0.02,
                ["position_embedding_type"] = "absolute",
            },
            "distilbert" => new JsonObject
            {
                ["model_type"] = "distilbert", ["vocab_size"] = vocabSize, ["dim"] = hidden, ["n_layers"] = layers, ["n_heads"] = heads,
                ["hidden_dim"] = 4 * hidden, ["activation"] = "gelu", ["max_position_embeddings"] = positions, ["pad_token_id"] = 0,
                ["dropout"] = 0.0, ["attention_dropout"] = 0.0, ["initializer_range"] = 0.02, ["sinusoidal_pos_embds"] = false,
            },
            _ => throw new ArgumentException($"unknown encoder architecture '{arch}': expected {string.Join(", ", Architectures)}"),
        };
        if (arch == "roberta") { o["bos_token_id"] = 0; o["eos_token_id"] = 2; }
        return EncoderConfig.Parse(o).WithHead(task, labels ?? (task == EncoderTask.QuestionAnswering ? ["start", "end"] : ["LABEL_0", "LABEL_1"]), problem);
    }

    /// <summary>Trains the family's tokenizer on <paramref name="corpus"/> and writes it into <paramref name="dir"/>; returns its vocabulary size.</summary>
    public static int WriteTokenizer(string arch, string preset, string dir, string corpus, int? vocabSize = null)
    {
        int size = vocabSize ?? DefaultVocabSize(preset);
        bool roberta = arch == "roberta";
        var json = roberta ? EncoderTokenizerBuilder.RobertaBpe(corpus, size) : EncoderTokenizerBuilder.WordPiece(corpus, size);
        EncoderTokenizerBuilder.Save(json, dir, roberta, Positions(preset));
        using var tok = HfTokenizer.Load(dir);
        return tok.VocabSize;
    }

    /// <summary>
    /// A complete HF directory in <paramref name="outDir"/>: tokenizer, config with the task head, seeded weights.
    /// Returns the model (eval mode). Nothing is written when an argument is invalid.
    /// </summary>
    public static EncoderModel InitModel(string arch, string preset, string outDir, long seed = 0, string? corpus = null, int? vocabSize = null,
        EncoderTask task = EncoderTask.SequenceClassification, IReadOnlyList<string>? labels = null, ProblemType? problem = null)
    {
        _ = Config(arch, preset, 300, task, labels, problem);   // validates before anything is written
        string tmp = Path.Combine(Path.GetTempPath(), $"rlft-tok-{Guid.NewGuid():N}");
        try
        {
            int vocab = WriteTokenizer(arch, preset, tmp, corpus ?? ModelPresets.BuiltInCorpus(), vocabSize);
            var model = EncoderCheckpoint.CreateInitialized(Config(arch, preset, vocab, task, labels, problem), seed);
            EncoderCheckpoint.Save(model, outDir, tmp);
            return model;
        }
        finally { if (Directory.Exists(tmp)) Directory.Delete(tmp, true); }
    }
}
