using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Tokenization;

namespace Rlft.Policy.Models;

/// <summary>
/// Randomly initialised checkpoints the project makes itself (no model hub): a byte-level BPE trained on a
/// built-in corpus (or a given one) and a config of a known size. <c>tiny</c> trains in seconds on two cores;
/// <c>small</c> is the benchmark shape (4 layers × d256); the published shapes (<see cref="PublishedShapes"/>:
/// gpt2-124m, qwen2-0.5b, qwen2-1.5b, llama3-1b) are real models' sizes, written tensor by tensor.
/// </summary>
internal static class ModelPresets
{
    /// <summary>init-model's --arch names; gemma3 writes model_type gemma3_text.</summary>
    public static readonly string[] Architectures = ["gpt2", "llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"];
    /// <summary>Sizes that go with any architecture.</summary>
    public static readonly string[] Sizes = ["tiny", "small"];
    /// <summary>Every --preset: the sizes, then the published shapes (each of one architecture).</summary>
    public static readonly string[] Presets = [.. Sizes, .. PublishedShapes.Names];

    /// <summary>The corpus shipped with RLFT for tokenizer training.</summary>
    public static string BuiltInCorpus()
    {
        using var stream = typeof(ModelPresets).Assembly.GetManifestResourceStream("Rlft.Policy.Corpus.txt")
                           ?? throw new InvalidOperationException("built-in corpus resource is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public static int DefaultVocabSize(string preset) => preset == "tiny" ? 512 : 2048;

    /// <summary>A config.json for an architecture and preset with the given vocabulary and special token ids.</summary>
    public static ModelConfig Config(string arch, string preset, int vocabSize, int eosId, int padId)
    {
        if (!Sizes.Contains(preset)) throw new ArgumentException($"unknown preset '{preset}': expected {string.Join(", ", Sizes)}");
        bool tiny = preset == "tiny";
        int hidden = tiny ? 64 : 256, layers = tiny ? 2 : 4, heads = tiny ? 4 : 8, positions = tiny ? 256 : 512;
        JsonObject o = arch switch
        {
            "gpt2" => new JsonObject
            {
                ["model_type"] = "gpt2", ["vocab_size"] = vocabSize, ["n_embd"] = hidden, ["n_layer"] = layers, ["n_head"] = heads,
                ["n_positions"] = positions, ["n_ctx"] = positions, ["layer_norm_epsilon"] = 1e-5, ["activation_function"] = "gelu_new",
                ["resid_pdrop"] = 0.0, ["embd_pdrop"] = 0.0, ["attn_pdrop"] = 0.0, ["initializer_range"] = 0.02,
            },
            "llama" or "qwen2" => new JsonObject
            {
                ["model_type"] = arch, ["vocab_size"] = vocabSize, ["hidden_size"] = hidden, ["num_hidden_layers"] = layers,
                ["num_attention_heads"] = heads, ["num_key_value_heads"] = heads / 2, ["intermediate_size"] = hidden * 11 / 4,
                ["max_position_embeddings"] = positions, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["hidden_act"] = "silu",
                ["tie_word_embeddings"] = arch == "qwen2", ["initializer_range"] = 0.02, ["attention_dropout"] = 0.0,
            },
            "qwen3" => new JsonObject
            {
                // Qwen3's head_dim need not be hidden / heads; make it differ so every shape path is exercised.
                ["model_type"] = "qwen3", ["vocab_size"] = vocabSize, ["hidden_size"] = hidden, ["num_hidden_layers"] = layers,
                ["num_attention_heads"] = heads, ["num_key_value_heads"] = heads / 2, ["head_dim"] = 2 * hidden / heads,
                ["intermediate_size"] = hidden * 3, ["max_position_embeddings"] = positions, ["rms_norm_eps"] = 1e-6,
                ["rope_theta"] = 1000000.0, ["hidden_act"] = "silu", ["tie_word_embeddings"] = true, ["attention_bias"] = false,
                ["use_sliding_window"] = false, ["initializer_range"] = 0.02, ["attention_dropout"] = 0.0,
            },
            "gemma2" or "gemma3" => Gemma(arch == "gemma3", vocabSize, hidden, layers, heads, positions),
            "phi3" => new JsonObject
            {
                // Phi-4-mini's shape features: grouped KV heads, 3/4 of each head rotated, tied embeddings.
                ["model_type"] = "phi3", ["vocab_size"] = vocabSize, ["hidden_size"] = hidden, ["num_hidden_layers"] = layers,
                ["num_attention_heads"] = heads, ["num_key_value_heads"] = heads / 2, ["intermediate_size"] = hidden * 8 / 3,
                ["max_position_embeddings"] = positions, ["original_max_position_embeddings"] = positions, ["rms_norm_eps"] = 1e-5,
                ["rope_theta"] = 10000.0, ["partial_rotary_factor"] = 0.75, ["rope_scaling"] = null, ["hidden_act"] = "silu",
                ["tie_word_embeddings"] = true, ["sliding_window"] = null, ["initializer_range"] = 0.02, ["attention_dropout"] = 0.0,
                ["resid_pdrop"] = 0.0, ["embd_pdrop"] = 0.0,
            },
            _ => throw new ArgumentException($"unknown architecture '{arch}': expected {string.Join(", ", Architectures)}"),
        };
        o["bos_token_id"] = eosId; o["eos_token_id"] = eosId; o["pad_token_id"] = padId;
        return ModelConfig.Parse(o);
    }

    /// <summary>Gemma 2 / Gemma 3 text shapes: GeGLU, (1 + w) norms, sliding layers then a full one, tied embeddings.</summary>
    static JsonObject Gemma(bool g3, int vocabSize, int hidden, int layers, int heads, int positions)
    {
        int headDim = hidden / heads;
        var o = new JsonObject
        {
            ["model_type"] = g3 ? "gemma3_text" : "gemma2", ["vocab_size"] = vocabSize, ["hidden_size"] = hidden,
            ["num_hidden_layers"] = layers, ["num_attention_heads"] = heads, ["num_key_value_heads"] = heads / 2, ["head_dim"] = headDim,
            ["intermediate_size"] = hidden * 4, ["max_position_embeddings"] = positions, ["rms_norm_eps"] = 1e-6,
            ["hidden_activation"] = "gelu_pytorch_tanh", ["query_pre_attn_scalar"] = headDim, ["sliding_window"] = positions / 8,
            ["layer_types"] = new JsonArray(Enumerable.Range(0, layers)
                .Select(i => (JsonNode)JsonValue.Create(i == layers - 1 ? "full_attention" : "sliding_attention")!).ToArray()),
            ["rope_theta"] = g3 ? 1000000.0 : 10000.0, ["tie_word_embeddings"] = true, ["attention_bias"] = false,
            ["initializer_range"] = 0.02, ["attention_dropout"] = 0.0,
        };
        if (g3) { o["rope_local_base_freq"] = 10000.0; o["final_logit_softcapping"] = null; o["attn_logit_softcapping"] = null; }
        else { o["final_logit_softcapping"] = 30.0; o["attn_logit_softcapping"] = 50.0; }
        return o;
    }

    /// <summary>
    /// The shape of a preset without training its tokenizer: a published shape as published, a size preset with its
    /// default vocabulary (the trained tokenizer may come out a little smaller). Special-token ids are placeholders.
    /// </summary>
    public static ModelConfig Shape(string arch, string preset) => PublishedShapes.IsPublished(preset)
        ? PublishedShapes.Config(preset, 0, 0, 1)
        : Config(arch, preset, DefaultVocabSize(preset), 0, 1);

    /// <summary>
    /// The architecture a preset is built with: a published shape fixes its own (and refuses a different
    /// <paramref name="arch"/>); a size needs one.
    /// </summary>
    public static string ResolveArchitecture(string? arch, string preset)
    {
        if (PublishedShapes.IsPublished(preset))
        {
            string family = PublishedShapes.Architecture(preset);
            if (arch is not null && arch != family) throw new ArgumentException($"preset '{preset}' is a {family} model; it cannot be built as '{arch}'");
            return family;
        }
        if (!Sizes.Contains(preset)) throw new ArgumentException($"unknown preset '{preset}': expected {string.Join(", ", Presets)}");
        if (arch is null) throw new ArgumentException($"preset '{preset}' needs an architecture ({string.Join(", ", Architectures)})");
        if (!Architectures.Contains(arch)) throw new ArgumentException($"unknown architecture '{arch}': expected {string.Join(", ", Architectures)}");
        return arch;
    }

    /// <summary>The architecture a published-shape preset implies (null for tiny and small, which take any).</summary>
    public static string? ArchitectureOf(string preset) => PublishedShapes.IsPublished(preset) ? PublishedShapes.Architecture(preset) : null;

    /// <summary>
    /// Writes a complete HF directory for any preset (tokenizer trained first) and returns its config. Published
    /// shapes are written tensor by tensor (<see cref="Checkpoint.SaveInitialized"/>): a 1.5B model never exists in
    /// memory. Nothing is written when an argument is invalid.
    /// </summary>
    public static ModelConfig Write(string? arch, string preset, string outDir, long seed = 0, string? corpus = null, int? vocabSize = null, string? chatTemplate = null)
    {
        arch = ResolveArchitecture(arch, preset);
        if (!PublishedShapes.IsPublished(preset))
        {
            using var model = InitModel(arch, preset, outDir, seed, corpus, vocabSize, chatTemplate);
            return model.Config;
        }
        return WithTokenizer(preset, corpus, vocabSize, chatTemplate, (tokDir, tok) =>
        {
            var config = PublishedShapes.Config(preset, tok.BosId ?? tok.EosId, tok.EosId, tok.PadId);
            if (Checkpoints.ModelDirectory.VocabularyProblem(tok, config, "tokenizer.json") is { } problem) throw new ArgumentException(problem);
            Checkpoint.SaveInitialized(config, outDir, seed, tokDir);
            return config;
        });
    }

    /// <summary>Trains the tokenizer into a temporary directory and hands it (and the loaded tokenizer) to <paramref name="use"/>.</summary>
    static T WithTokenizer<T>(string preset, string? corpus, int? vocabSize, string? chatTemplate, Func<string, HfTokenizer, T> use)
    {
        string tmpTok = Path.Combine(Path.GetTempPath(), $"rlft-tok-{Guid.NewGuid():N}");
        try
        {
            InitTokenizer(preset, tmpTok, corpus, vocabSize, chatTemplate);
            using var tok = HfTokenizer.Load(tmpTok);
            return use(tmpTok, tok);
        }
        finally { if (Directory.Exists(tmpTok)) Directory.Delete(tmpTok, true); }
    }

    /// <summary>
    /// Trains a tokenizer, builds and seeds a model of a size preset (tiny, small), and writes a complete HF directory
    /// to <paramref name="outDir"/>. Returns the model (eval mode). Nothing is written when an argument is invalid. With
    /// <paramref name="chatTemplate"/> (a <see cref="Chat.BuiltinChatTemplates"/> name) the tokenizer carries the template
    /// and its special tokens.
    /// </summary>
    public static CausalLM InitModel(string arch, string preset, string outDir, long seed = 0, string? corpus = null, int? vocabSize = null, string? chatTemplate = null)
    {
        if (PublishedShapes.IsPublished(preset))
            throw new ArgumentException($"preset '{preset}' is written tensor by tensor without building the model: use {nameof(ModelPresets)}.{nameof(Write)}");
        _ = Config(arch, preset, 300, 0, 1);   // validates arch and preset before anything is written
        return WithTokenizer(preset, corpus, vocabSize, chatTemplate, (tokDir, tok) =>
        {
            var model = ModelFactory.CreateInitialized(Config(arch, preset, tok.VocabSize, tok.EosId, tok.PadId), seed);
            Checkpoint.Save(model, outDir, tokDir);
            return model;
        });
    }

    /// <summary>
    /// The tokenizer files <see cref="InitModel"/> writes (tokenizer.json, tokenizer_config.json and, with a chat
    /// template, generation_config.json whose eos_token_id lists EOS and the end-of-turn token, as chat checkpoints do):
    /// what tools that need only the tokenizer (inspect-data) make without building a model.
    /// </summary>
    public static void InitTokenizer(string preset, string dir, string? corpus = null, int? vocabSize = null, string? chatTemplate = null)
    {
        string? template = chatTemplate is null ? null : Chat.BuiltinChatTemplates.Source(chatTemplate);
        string[] specials = chatTemplate is null ? BpeTrainer.DefaultSpecialTokens : [.. BpeTrainer.DefaultSpecialTokens, .. Chat.BuiltinChatTemplates.SpecialTokens(chatTemplate)];
        // The role names the template writes, so that they are a token or two rather than a letter each.
        string text = (corpus ?? BuiltInCorpus()) + (chatTemplate is null ? "" : "\n" + string.Join("\n", Enumerable.Repeat("system\nuser\nassistant", 8)));
        var tokenizerJson = BpeTrainer.Train(text, vocabSize ?? DefaultVocabSize(preset), specials);
        BpeTrainer.Save(tokenizerJson, dir, chatTemplate: template);
        if (chatTemplate is null) return;
        using var tok = HfTokenizer.Load(dir);
        int[] stop = [tok.EosId, tok.SpecialTokens[Chat.BuiltinChatTemplates.EndOfTurn(chatTemplate)]];
        var generation = new JsonObject { ["eos_token_id"] = new JsonArray(stop.Select(id => (JsonNode)id).ToArray()), ["pad_token_id"] = tok.PadId };
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), generation.ToJsonString() + "\n");
    }
}
