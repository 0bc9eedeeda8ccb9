using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Models;

/// <summary>The architectures RLFT builds from a Hugging Face <c>config.json</c>.</summary>
public enum ModelFamily { Gpt2, Llama }

/// <summary>
/// A Hugging Face <c>config.json</c>, read into the fields RLFT uses. GPT-2 spellings (<c>n_embd</c>, <c>n_layer</c>)
/// and Llama spellings (<c>hidden_size</c>, <c>num_hidden_layers</c>) both resolve here. Options that change the
/// mathematics and are not implemented are refused with the field's name; the raw JSON is kept so saving writes
/// back every field the file had.
/// </summary>
public sealed class ModelConfig
{
    public required string ModelType { get; init; }          // gpt2 | llama | mistral | qwen2
    public ModelFamily Family => ModelType == "gpt2" ? ModelFamily.Gpt2 : ModelFamily.Llama;
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
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }                  // q/k/v (and o for llama) biases
    public bool OutputProjectionBias { get; init; }
    public bool MlpBias { get; init; }
    public int? SlidingWindow { get; init; }                  // mistral: keys further back than this are invisible
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }
    public int? PadTokenId { get; init; }
    public JsonObject Raw { get; init; } = new();

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
            "llama" or "mistral" or "qwen2" => ParseLlama(o, type),
            _ => throw new InvalidDataException($"field 'model_type' is '{type}': supported are gpt2, llama, mistral, qwen2"),
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

    static ModelConfig ParseLlama(JsonObject o, string type)
    {
        string act = Str(o, "hidden_act") ?? "silu";
        if (act != "silu") Refuse("hidden_act", act, "only silu (SwiGLU) is implemented");
        int hidden = Need(o, "hidden_size");
        int heads = Need(o, "num_attention_heads");
        int kv = Int(o, "num_key_value_heads") ?? heads;
        if (heads % kv != 0) throw new InvalidDataException($"field 'num_key_value_heads' ({kv}) does not divide 'num_attention_heads' ({heads})");
        int headDim = Int(o, "head_dim") ?? hidden / heads;
        if (o["head_dim"] is null && hidden % heads != 0) throw new InvalidDataException($"field 'hidden_size' ({hidden}) is not divisible by 'num_attention_heads' ({heads})");
        if (headDim % 2 != 0) throw new InvalidDataException($"field 'head_dim' ({headDim}) must be even for rotary embeddings");
        if (Dbl(o, "partial_rotary_factor") is double prf && prf != 1.0) Refuse("partial_rotary_factor", prf.ToString(System.Globalization.CultureInfo.InvariantCulture), "only full rotary embeddings are implemented");
        if ((Int(o, "pretraining_tp") ?? 1) != 1) Refuse("pretraining_tp", Int(o, "pretraining_tp").ToString()!, "only 1 is implemented");
        int? window = null;
        if (type == "mistral") window = Int(o, "sliding_window");
        if (type == "qwen2" && Bool(o, "use_sliding_window") == true) Refuse("use_sliding_window", "true", "sliding-window attention is not implemented for qwen2");
        bool attnBias = type == "qwen2" || (Bool(o, "attention_bias") ?? false);
        return new ModelConfig
        {
            ModelType = type,
            VocabSize = Need(o, "vocab_size"),
            HiddenSize = hidden,
            NumLayers = Need(o, "num_hidden_layers"),
            NumHeads = heads,
            NumKeyValueHeads = kv,
            HeadDim = headDim,
            IntermediateSize = Need(o, "intermediate_size"),
            MaxPositions = Int(o, "max_position_embeddings") ?? 2048,
            NormEps = Dbl(o, "rms_norm_eps") ?? 1e-6,
            RopeTheta = Dbl(o, "rope_theta") ?? 10000.0,
            RopeScaling = Models.RopeScaling.Parse(o["rope_scaling"]),
            TieWordEmbeddings = Bool(o, "tie_word_embeddings") ?? false,
            AttentionBias = attnBias,
            // qwen2 has biases on q/k/v only; llama's attention_bias covers o_proj too.
            OutputProjectionBias = type != "qwen2" && attnBias,
            MlpBias = type == "llama" && (Bool(o, "mlp_bias") ?? false),
            SlidingWindow = window,
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
            o["architectures"] ??= new JsonArray(ModelType switch { "qwen2" => "Qwen2ForCausalLM", "mistral" => "MistralForCausalLM", _ => "LlamaForCausalLM" });
            o["hidden_size"] = HiddenSize; o["num_hidden_layers"] = NumLayers; o["num_attention_heads"] = NumHeads;
            o["num_key_value_heads"] = NumKeyValueHeads; o["head_dim"] = HeadDim; o["intermediate_size"] = IntermediateSize;
            o["max_position_embeddings"] = MaxPositions; o["rms_norm_eps"] = NormEps; o["rope_theta"] = RopeTheta;
            o["hidden_act"] ??= "silu";
            if (ModelType == "llama") { o["attention_bias"] = AttentionBias; o["mlp_bias"] = MlpBias; }
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

    static void Refuse(string field, string value, string why) =>
        throw new InvalidDataException($"field '{field}' = {value} is not supported: {why}");

    static int Need(JsonObject o, string key) => Int(o, key) ?? throw new InvalidDataException($"field '{key}' is missing");

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
