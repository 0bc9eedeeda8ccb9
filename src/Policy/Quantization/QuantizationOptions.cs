using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Quantization;

/// <summary>
/// How a frozen base is quantized at load (<c>rlft.job.model { quantize, double-quant, compute-dtype,
/// quantize-skip-modules }</c>), kept beside checkpoints as <c>quantization_config.json</c> so that the same base is
/// rebuilt bit for bit. Only projections (<c>Dense</c> layers) are ever quantized; embeddings, norms, value and
/// reward heads always stay in full precision, and <see cref="SkipModules"/> keeps named projections there too.
/// </summary>
public sealed record QuantizationOptions
{
    public const string FileName = "quantization_config.json";

    /// <summary>nf4, int8 or none (default none).</summary>
    public QuantizationKind Kind { get; init; } = QuantizationKind.None;
    /// <summary>NF4 only: block scales in 8 bits (≈0.127 instead of 0.5 bits per weight). Default on.</summary>
    public bool DoubleQuant { get; init; } = true;
    /// <summary>The dtype W is rebuilt in and multiplied in; null (auto) is bf16 on CUDA and fp32 on CPU (see README: bf16 matmuls were slower than fp32 on the CPUs measured).</summary>
    public ScalarType? ComputeDtype { get; init; }
    /// <summary>
    /// Projections kept in full precision: a last name (<c>lm_head</c>, <c>down_proj</c>) or a full module name
    /// (<c>model.layers.0.mlp.down_proj</c>). Default [lm_head], as bitsandbytes' llm_int8_skip_modules does for causal LMs.
    /// </summary>
    public IReadOnlyList<string> SkipModules { get; init; } = ["lm_head"];

    public bool Enabled => Kind != QuantizationKind.None;

    internal ScalarType ResolveComputeDtype(Device device) =>
        ComputeDtype ?? (device.type == DeviceType.CUDA ? ScalarType.BFloat16 : ScalarType.Float32);

    /// <summary>Whether the projection named <paramref name="module"/> (e.g. model.layers.0.self_attn.q_proj) is quantized.</summary>
    internal bool Quantizes(string module) =>
        Enabled && !SkipModules.Any(s => module == s || module.EndsWith("." + s, StringComparison.Ordinal));

    internal static string KindName(QuantizationKind kind) => kind switch { QuantizationKind.Nf4 => "nf4", QuantizationKind.Int8 => "int8", _ => "none" };

    internal static string DtypeName(ScalarType? dtype) => dtype switch { ScalarType.BFloat16 => "bf16", ScalarType.Float32 => "fp32", null => "auto", _ => dtype.ToString()! };

    public JsonObject ToJson() => new()
    {
        ["quant_method"] = "rlft",
        ["quantize"] = KindName(Kind),
        ["block_size"] = QuantizedWeight.BlockSize,
        ["double_quant"] = DoubleQuant,
        ["double_quant_block_size"] = ScaleQuantizer.GroupSize,
        ["compute_dtype"] = DtypeName(ComputeDtype),
        ["skip_modules"] = new JsonArray(SkipModules.Select(m => (JsonNode)JsonValue.Create(m)!).ToArray()),
    };

    public void Save(string dir) =>
        File.WriteAllText(Path.Combine(dir, FileName), ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    /// <summary>Reads <c>quantization_config.json</c> text; every field is checked and named in the error.</summary>
    public static QuantizationOptions Parse(string json, string source)
    {
        JsonObject o;
        try { o = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"{source}: expected a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: invalid JSON ({e.Message})", e); }
        string Field(string name) => o[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new InvalidDataException($"{source}: field '{name}' is missing or not a string");
        if (Field("quant_method") != "rlft") throw new InvalidDataException($"{source}: field 'quant_method' is '{Field("quant_method")}', expected rlft");
        var kind = Field("quantize") switch
        {
            "nf4" => QuantizationKind.Nf4,
            "int8" => QuantizationKind.Int8,
            "none" => QuantizationKind.None,
            var k => throw new InvalidDataException($"{source}: field 'quantize' is '{k}', expected nf4, int8 or none"),
        };
        if (o["block_size"]?.GetValue<int>() is int b && b != QuantizedWeight.BlockSize) throw new InvalidDataException($"{source}: field 'block_size' is {b}; RLFT quantizes in blocks of {QuantizedWeight.BlockSize}");
        ScalarType? dtype = Field("compute_dtype") switch
        {
            "bf16" => ScalarType.BFloat16,
            "fp32" => ScalarType.Float32,
            "auto" => null,
            var d => throw new InvalidDataException($"{source}: field 'compute_dtype' is '{d}', expected bf16, fp32 or auto"),
        };
        return new QuantizationOptions
        {
            Kind = kind,
            DoubleQuant = o["double_quant"] is JsonValue dq && dq.TryGetValue<bool>(out var on) ? on : throw new InvalidDataException($"{source}: field 'double_quant' is missing or not a boolean"),
            ComputeDtype = dtype,
            SkipModules = o["skip_modules"] is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToArray() : throw new InvalidDataException($"{source}: field 'skip_modules' is missing or not a list"),
        };
    }

    /// <summary>The settings saved in <paramref name="dir"/>, or null when it holds none.</summary>
    public static QuantizationOptions? Load(string dir)
    {
        string path = Path.Combine(dir, FileName);
        return File.Exists(path) ? Parse(File.ReadAllText(path), path) : null;
    }
}
