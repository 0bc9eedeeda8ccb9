using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Models;

/// <summary>The module trees RLFT builds from a Hugging Face <c>config.json</c>.</summary>
/// <remarks>Llama covers llama, mistral, qwen2, qwen3 and phi3 (one decoder stack, different attention and MLP blocks); Gemma covers gemma2 and gemma3_text.</remarks>
public enum ModelFamily { Gpt2, Llama, Gemma }

/// <summary>The MLP's gate activation (<c>hidden_act</c> / <c>hidden_activation</c>).</summary>
public enum Activation { Silu, GeluTanh, Gelu }

/// <summary>
/// A Hugging Face <c>config.json</c>, read into the fields RLFT uses. GPT-2 spellings (<c>n_embd</c>, <c>n_layer</c>)
/// and Llama spellings (<c>hidden_size</c>, <c>num_hidden_layers</c>) both resolve here. Options that change the
/// mathematics and are not implemented are refused with the field's name; the raw JSON is kept so saving writes
/// back every field the file had. Defaults follow each family's transformers config class.
/// </summary>
public sealed class ModelConfig
{
    /// <summary>Every <c>model_type</c> RLFT reads.</summary>
    public static readonly string[] SupportedTypes = ["gpt2", "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3_text"];

    public required string ModelType { get; init; }          // one of SupportedTypes
    public ModelFamily Family => ModelType switch
    {
        "gpt2" => ModelFamily.Gpt2,
        "gemma2" or "gemma3_text" => ModelFamily.Gemma,
        _ => ModelFamily.Llama,
    };
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int IntermediateSize { get; init; }
    public required int MaxPositions { get; init; }
    public required double NormEps { get; init; }
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Rotated dimensions per head: head_dim × partial_rotary_factor (phi3), else head_dim.</summary>
    public int RotaryDim { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }                  // q/k/v (and o for llama) biases
    public bool OutputProjectionBias { get; init; }
    public bool MlpBias { get; init; }
    public Activation Activation { get; init; } = Activation.Silu;
    /// <summary>qwen3, gemma3_text: RMSNorm over head_dim on queries and keys (q_norm, k_norm), before RoPE.</summary>
    public bool QkNorm { get; init; }
    /// <summary>Keys further back than this are invisible (a token sees itself and the window − 1 before it).</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Per layer, whether <see cref="SlidingWindow"/> applies (gemma's layer_types); null: it applies to every layer.</summary>
    public IReadOnlyList<bool>? SlidingLayers { get; init; }
    /// <summary>gemma: attention scores are scaled by query_pre_attn_scalar^-½ instead of head_dim^-½.</summary>
    public double? QueryPreAttnScalar { get; init; }
    /// <summary>gemma2: scores → cap·tanh(scores / cap) before the mask.</summary>
    public double? AttnLogitSoftcap { get; init; }
    /// <summary>gemma2: logits → cap·tanh(logits / cap).</summary>
    public double? FinalLogitSoftcap { get; init; }
    /// <summary>gemma3_text: the RoPE base of sliding layers (rope_local_base_freq); null: every layer uses <see cref="RopeTheta"/>.</summary>
    public double? LocalRopeTheta { get; init; }
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }
    public int? PadTokenId { get; init; }
    public JsonObject Raw { get; init; } = new();

    /// <summary>Whether layer <paramref name="layer"/> attends through the sliding window.</summary>
    internal bool IsSlidingLayer(int layer) => SlidingWindow is not null && (SlidingLayers is null || SlidingLayers[layer]);

    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"model config not found: {path}", path);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON ({e.Message})", e); }
        if (node is not JsonObject obj) throw new InvalidDataException($"{path}: expected a JSON object");
        try { return Parse(obj); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    public static ModelConfig Parse(JsonObject o)
    {
        string type = Str(o, "model_type") ?? throw new InvalidDataException("field 'model_type' is missing");
        return type switch
        {
            "gpt2" => ParseGpt2(o),
            "llama" or "mistral" or "qwen2" or "qwen3" or "phi3" => LlamaConfigParser.Parse(o, type),
            "gemma2" or "gemma3_text" => GemmaConfigParser.Parse(o, type),
            "gemma3" => throw new InvalidDataException("field 'model_type' is 'gemma3' (the multimodal model): load its text model, model_type gemma3_text"),
            _ => throw new InvalidDataException($"field 'model_type' is '{type}': supported are {string.Join(", ", SupportedTypes)}"),
        };
    }

    static ModelConfig ParseGpt2(JsonObject o)
    {
        string act = Str(o, "activation_function") ?? "gelu_new";
        if (act != "gelu_new") Refuse("activation_function", act, "only gelu_new is implemented");
        if (Bool(o, "scale_attn_by_inverse_layer_idx") == true) Refuse("scale_attn_by_inverse_layer_idx", "true", "not implemented");
        if (Bool(o, "reorder_and_upcast_attn") == true) Refuse("reorder_and_upcast_attn", "true", "not implemented");
        if (Bool(o, "scale_attn_weights") == false) Refuse("scale_attn_weights", "false", "not implemented");
        if (Bool(o, "add_cross_attention") == true) Refuse("add_cross_attention", "true", "decoder-only models only");
        int hidden = Need(o, "n_embd");
        int heads = Need(o, "n_head");
        if (hidden % heads != 0) throw new InvalidDataException($"field 'n_embd' ({hidden}) is not divisible by 'n_head' ({heads})");
        return new ModelConfig
        {
            ModelType = "gpt2",
            VocabSize = Need(o, "vocab_size"),
            HiddenSize = hidden,
            NumLayers = Need(o, "n_layer"),
            NumHeads = heads,
            NumKeyValueHeads = heads,
            HeadDim = hidden / heads,
            RotaryDim = hidden / heads,
            IntermediateSize = Int(o, "n_inner") ?? 4 * hidden,
            MaxPositions = Need(o, "n_positions"),
            NormEps = Dbl(o, "layer_norm_epsilon") ?? 1e-5,
            TieWordEmbeddings = Bool(o, "tie_word_embeddings") ?? true,
            AttentionBias = true,
            OutputProjectionBias = true,
            MlpBias = true,
            BosTokenId = Int(o, "bos_token_id"),
            EosTokenId = Int(o, "eos_token_id"),
            PadTokenId = Int(o, "pad_token_id"),
            Raw = o,
        };
    }

    /// <summary>The JSON to write as <c>config.json</c>: the original fields plus what RLFT knows.</summary>
    public JsonObject ToJson()
    {
        var o = (JsonObject)Raw.DeepClone();
        o["model_type"] = ModelType;
        o["vocab_size"] = VocabSize;
        if (Family == ModelFamily.Gpt2)
        {
            o["architectures"] ??= new JsonArray("GPT2LMHeadModel");
            o["n_embd"] = HiddenSize; o["n_layer"] = NumLayers; o["n_head"] = NumHeads;
            o["n_positions"] = MaxPositions; o["layer_norm_epsilon"] = NormEps;
            o["activation_function"] ??= "gelu_new";
            if (IntermediateSize != 4 * HiddenSize) o["n_inner"] = IntermediateSize;
        }
        else
        {
            o["architectures"] ??= new JsonArray(ModelType switch
            {
                "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM", "mistral" => "MistralForCausalLM", "phi3" => "Phi3ForCausalLM",
                "gemma2" => "Gemma2ForCausalLM", "gemma3_text" => "Gemma3ForCausalLM", _ => "LlamaForCausalLM",
            });
            o["hidden_size"] = HiddenSize; o["num_hidden_layers"] = NumLayers; o["num_attention_heads"] = NumHeads;
            o["num_key_value_heads"] = NumKeyValueHeads; o["head_dim"] = HeadDim; o["intermediate_size"] = IntermediateSize;
            o["max_position_embeddings"] = MaxPositions; o["rms_norm_eps"] = NormEps; o["rope_theta"] = RopeTheta;
            if (ModelType == "llama") { o["attention_bias"] = AttentionBias; o["mlp_bias"] = MlpBias; }
            if (Family == ModelFamily.Gemma) GemmaConfigParser.Write(this, o);
            else o["hidden_act"] ??= "silu";
        }
        o["tie_word_embeddings"] = TieWordEmbeddings;
        o["torch_dtype"] ??= "float32";
        if (BosTokenId is int b) o["bos_token_id"] = b;
        if (EosTokenId is int e) o["eos_token_id"] = e;
        if (PadTokenId is int p) o["pad_token_id"] = p;
        return o;
    }

    public void Save(string path) =>
        File.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    internal static void Refuse(string field, string value, string why) =>
        throw new InvalidDataException($"field '{field}' = {value} is not supported: {why}");

    internal static int Need(JsonObject o, string key) => Int(o, key) ?? throw new InvalidDataException($"field '{key}' is missing");

    internal static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    internal static int? Int(JsonObject o, string key)
    {
        var n = o[key];
        if (n is null) return null;
        // eos_token_id may be a list (Llama-3 instruct); the first entry is the primary one.
        if (n is JsonArray a) return a.Count > 0 ? a[0]!.GetValue<int>() : null;
        try { return n.GetValue<int>(); }
        catch (Exception e) when (e is FormatException or InvalidOperationException) { throw new InvalidDataException($"field '{key}' must be an integer, got {n.ToJsonString()}"); }
    }

    internal static double? Dbl(JsonObject o, string key)
    {
        var n = o[key];
        if (n is null) return null;
        // Numbers parsed from text convert to double; values built in code keep their CLR type (int, long, float).
        if (n is JsonValue v && (v.TryGetValue<int>(out var i) ? (double?)i : v.TryGetValue<long>(out var l) ? l : v.TryGetValue<float>(out var f) ? f : null) is double x) return x;
        try { return n.GetValue<double>(); }
        catch (Exception e) when (e is FormatException or InvalidOperationException) { throw new InvalidDataException($"field '{key}' must be a number, got {n.ToJsonString()}"); }
    }

    internal static bool? Bool(JsonObject o, string key)
    {
        var n = o[key];
        if (n is null) return null;
        try { return n.GetValue<bool>(); }
        catch (Exception e) when (e is FormatException or InvalidOperationException) { throw new InvalidDataException($"field '{key}' must be true or false, got {n.ToJsonString()}"); }
    }
}
