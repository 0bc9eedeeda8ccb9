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
        // Qwen3: head_dim 16 ≠ hidden / heads = 8; q/k norms; untied.
        "qwen3" => new JsonObject
        {
            ["model_type"] = "qwen3", ["vocab_size"] = vocab, ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["head_dim"] = 16, ["intermediate_size"] = 48, ["max_position_embeddings"] = 64,
            ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = false,
        },
        // Gemma 2: sliding layer 0, full layer 1, window 4, default soft-caps (50 / 30); query_pre_attn_scalar ≠ head_dim.
        "gemma2" => new JsonObject
        {
            ["model_type"] = "gemma2", ["vocab_size"] = vocab, ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["head_dim"] = 8, ["intermediate_size"] = 64, ["max_position_embeddings"] = 64,
            ["query_pre_attn_scalar"] = 12, ["sliding_window"] = 4,
        },
        // Gemma 3: sliding_window_pattern 3 → layers 0, 1 slide (window 4, RoPE base 10000), layer 2 is full (base 1e6).
        "gemma3" => new JsonObject
        {
            ["model_type"] = "gemma3_text", ["vocab_size"] = vocab, ["hidden_size"] = 32, ["num_hidden_layers"] = 3, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 1, ["head_dim"] = 16, ["intermediate_size"] = 64, ["max_position_embeddings"] = 64,
            ["query_pre_attn_scalar"] = 16, ["sliding_window"] = 4, ["sliding_window_pattern"] = 3, ["rope_local_base_freq"] = 10000.0,
            ["rope_theta"] = 1000000.0,
        },
        // Phi-3: fused projections, 3/4 of each head rotated (6 of 8 dims), a window of 6 on every layer, tied.
        "phi3" => new JsonObject
        {
            ["model_type"] = "phi3", ["vocab_size"] = vocab, ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["intermediate_size"] = 40, ["max_position_embeddings"] = 64, ["original_max_position_embeddings"] = 64,
            ["partial_rotary_factor"] = 0.75, ["sliding_window"] = 6, ["tie_word_embeddings"] = true,
        },
        _ => throw new ArgumentException(arch),
    });

    /// <summary>The four families added with their distinctive pieces.</summary>
    public static readonly string[] NewFamilies = ["qwen3", "gemma2", "gemma3", "phi3"];

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
