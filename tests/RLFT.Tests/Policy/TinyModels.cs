using System.Text.Json.Nodes;
using Rlft.Policy.Models;

namespace Rlft.Tests.Policy;

/// <summary>Small configs of each architecture, built directly (no tokenizer) for fast numeric tests.</summary>
static class TinyModels
{
    public const int Vocab = 97;

    public static ModelConfig Config(string arch, int vocab = Vocab) => ModelConfig.Parse(arch switch
    {
        "gpt2" => new JsonObject { ["model_type"] = "gpt2", ["vocab_size"] = vocab, ["n_embd"] = 32, ["n_layer"] = 2, ["n_head"] = 4, ["n_positions"] = 64 },
        "llama" => new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = vocab, ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["intermediate_size"] = 64, ["max_position_embeddings"] = 64, ["tie_word_embeddings"] = false,
        },
        "qwen2" => new JsonObject
        {
            ["model_type"] = "qwen2", ["vocab_size"] = vocab, ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 1, ["intermediate_size"] = 48, ["max_position_embeddings"] = 64, ["tie_word_embeddings"] = true,
            ["rope_theta"] = 1000000.0,
        },
        "mistral" => new JsonObject
        {
            ["model_type"] = "mistral", ["vocab_size"] = vocab, ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["intermediate_size"] = 64, ["max_position_embeddings"] = 64, ["head_dim"] = 16, ["sliding_window"] = 4096,
        },
        _ => throw new ArgumentException(arch),
    });

    /// <summary>A seeded model; a larger init std than HF's makes the logits peaked enough for stable greedy comparisons.</summary>
    public static CausalLM Create(string arch, long seed = 1, double std = 0.2)
    {
        var model = ModelFactory.Create(Config(arch));
        model.InitWeights(seed, std);
        model.eval();
        return model;
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "rlft-policy-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
