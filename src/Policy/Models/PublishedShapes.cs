using System.Text.Json.Nodes;

namespace Rlft.Policy.Models;

/// <summary>
/// The shapes of real published checkpoints — layers, widths, heads, KV heads, vocabulary, tying, positions and RoPE —
/// taken from their <c>config.json</c> on the Hugging Face hub, so that memory and speed can be measured at real sizes
/// with random weights and no download. Dropout is written as 0 (RLFT trains with dropout off); token ids come from
/// the project's own tokenizer, whose ids stay below the published vocabulary (the embedding keeps the published
/// size, so the rows above the tokenizer's ids are never read).
/// </summary>
internal static class PublishedShapes
{
    /// <summary>init-model's --preset names for real shapes.</summary>
    public static readonly string[] Names = ["gpt2-124m", "qwen2-0.5b", "qwen2-1.5b", "llama3-1b", "qwen3-0.6b", "gemma3-1b", "phi4-mini"];

    public static bool IsPublished(string preset) => Names.Contains(preset);

    /// <summary>The <c>--arch</c> (model family) a published shape belongs to.</summary>
    public static string Architecture(string preset) => preset switch
    {
        "gpt2-124m" => "gpt2",
        "qwen2-0.5b" or "qwen2-1.5b" => "qwen2",
        "llama3-1b" => "llama",
        "qwen3-0.6b" => "qwen3",
        "gemma3-1b" => "gemma3",
        "phi4-mini" => "phi3",
        _ => throw Unknown(preset),
    };

    /// <summary>Where the numbers come from.</summary>
    public static string Source(string preset) => preset switch
    {
        "gpt2-124m" => "openai-community/gpt2",
        "qwen2-0.5b" => "Qwen/Qwen2-0.5B",
        "qwen2-1.5b" => "Qwen/Qwen2-1.5B",
        "llama3-1b" => "meta-llama/Llama-3.2-1B",
        "qwen3-0.6b" => "Qwen/Qwen3-0.6B",
        "gemma3-1b" => "google/gemma-3-1b-pt",
        "phi4-mini" => "microsoft/Phi-4-mini-instruct",
        _ => throw Unknown(preset),
    };

    /// <summary>The parameter count the model card states (tied embeddings counted once), which the shape must reproduce.</summary>
    public static long PublishedParameters(string preset) => preset switch
    {
        "gpt2-124m" => 124_439_808,
        "qwen2-0.5b" => 494_032_768,
        "qwen2-1.5b" => 1_543_714_304,
        "llama3-1b" => 1_235_814_400,
        "qwen3-0.6b" => 596_049_920,
        "gemma3-1b" => 999_885_952,
        "phi4-mini" => 3_836_021_760,
        _ => throw Unknown(preset),
    };

    /// <summary>The config of a published shape, with the project tokenizer's special token ids.</summary>
    public static ModelConfig Config(string preset, int bosId, int eosId, int padId)
    {
        JsonObject o = preset switch
        {
            "gpt2-124m" => new JsonObject
            {
                ["model_type"] = "gpt2", ["vocab_size"] = 50257, ["n_embd"] = 768, ["n_layer"] = 12, ["n_head"] = 12,
                ["n_positions"] = 1024, ["n_ctx"] = 1024, ["layer_norm_epsilon"] = 1e-5, ["activation_function"] = "gelu_new",
                ["resid_pdrop"] = 0.0, ["embd_pdrop"] = 0.0, ["attn_pdrop"] = 0.0, ["initializer_range"] = 0.02,
            },
            "qwen2-0.5b" => Qwen2(hidden: 896, intermediate: 4864, layers: 24, heads: 14),
            "qwen2-1.5b" => Qwen2(hidden: 1536, intermediate: 8960, layers: 28, heads: 12),
            "llama3-1b" => new JsonObject
            {
                ["model_type"] = "llama", ["vocab_size"] = 128256, ["hidden_size"] = 2048, ["intermediate_size"] = 8192,
                ["num_hidden_layers"] = 16, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 8, ["head_dim"] = 64,
                ["max_position_embeddings"] = 131072, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 500000.0,
                ["rope_scaling"] = new JsonObject
                {
                    ["rope_type"] = "llama3", ["factor"] = 32.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
                    ["original_max_position_embeddings"] = 8192,
                },
                ["hidden_act"] = "silu", ["tie_word_embeddings"] = true, ["attention_bias"] = false, ["mlp_bias"] = false,
                ["pretraining_tp"] = 1, ["initializer_range"] = 0.02, ["attention_dropout"] = 0.0,
            },
            "qwen3-0.6b" => new JsonObject
            {
                ["model_type"] = "qwen3", ["vocab_size"] = 151936, ["hidden_size"] = 1024, ["intermediate_size"] = 3072,
                ["num_hidden_layers"] = 28, ["num_attention_heads"] = 16, ["num_key_value_heads"] = 8, ["head_dim"] = 128,
                ["max_position_embeddings"] = 40960, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 1000000.0, ["hidden_act"] = "silu",
                ["tie_word_embeddings"] = true, ["attention_bias"] = false, ["use_sliding_window"] = false, ["max_window_layers"] = 28,
                ["initializer_range"] = 0.02, ["attention_dropout"] = 0.0,
            },
            "gemma3-1b" => new JsonObject
            {
                ["model_type"] = "gemma3_text", ["vocab_size"] = 262144, ["hidden_size"] = 1152, ["intermediate_size"] = 6912,
                ["num_hidden_layers"] = 26, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 1, ["head_dim"] = 256,
                ["max_position_embeddings"] = 32768, ["rms_norm_eps"] = 1e-6, ["hidden_activation"] = "gelu_pytorch_tanh",
                ["query_pre_attn_scalar"] = 256, ["sliding_window"] = 512, ["sliding_window_pattern"] = 6,
                ["rope_theta"] = 1000000.0, ["rope_local_base_freq"] = 10000.0, ["rope_scaling"] = null,
                ["final_logit_softcapping"] = null, ["attn_logit_softcapping"] = null, ["tie_word_embeddings"] = true,
                ["attention_bias"] = false, ["initializer_range"] = 0.02, ["attention_dropout"] = 0.0,
            },
            // Phi-4-mini's longrope factors are left out (rope_scaling null): they change no shape, memory or speed.
            "phi4-mini" => new JsonObject
            {
                ["model_type"] = "phi3", ["vocab_size"] = 200064, ["hidden_size"] = 3072, ["intermediate_size"] = 8192,
                ["num_hidden_layers"] = 32, ["num_attention_heads"] = 24, ["num_key_value_heads"] = 8,
                ["max_position_embeddings"] = 131072, ["original_max_position_embeddings"] = 4096, ["rms_norm_eps"] = 1e-5,
                ["rope_theta"] = 10000.0, ["partial_rotary_factor"] = 0.75, ["rope_scaling"] = null, ["hidden_act"] = "silu",
                ["tie_word_embeddings"] = true, ["sliding_window"] = 262144, ["initializer_range"] = 0.02,
                ["attention_dropout"] = 0.0, ["resid_pdrop"] = 0.0, ["embd_pdrop"] = 0.0,
            },
            _ => throw Unknown(preset),
        };
        o["bos_token_id"] = bosId; o["eos_token_id"] = eosId; o["pad_token_id"] = padId;
        return ModelConfig.Parse(o);
    }

    /// <summary>Qwen2 base models: 2 KV heads, q/k/v biases, RoPE base 1e6, 131,072 positions, tied embeddings.</summary>
    static JsonObject Qwen2(int hidden, int intermediate, int layers, int heads) => new()
    {
        ["model_type"] = "qwen2", ["vocab_size"] = 151936, ["hidden_size"] = hidden, ["intermediate_size"] = intermediate,
        ["num_hidden_layers"] = layers, ["num_attention_heads"] = heads, ["num_key_value_heads"] = 2,
        ["max_position_embeddings"] = 131072, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 1000000.0, ["hidden_act"] = "silu",
        ["tie_word_embeddings"] = true, ["use_sliding_window"] = false, ["sliding_window"] = 131072, ["max_window_layers"] = layers,
        ["initializer_range"] = 0.02, ["attention_dropout"] = 0.0,
    };

    static ArgumentException Unknown(string preset) =>
        new($"unknown published shape '{preset}': expected {string.Join(", ", Names)}");
}
