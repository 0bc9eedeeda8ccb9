using System.Text;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>
/// Model weights as one byte blob for weight sync: a JSON header (small text files such as config.json and
/// tokenizer.json, so a replica can be built from the blob alone, plus each tensor's name, shape and dtype)
/// followed by every tensor's data: floating-point tensors as float32, integer tensors (a quantized base's codes
/// and scales: int16, int8, uint8) as they are, so a quantized base travels at its quantized size. Packing and
/// unpacking are bit-exact, unless packed with bf16 (a bf16 weight sync: floating-point tensors rounded to bf16,
/// widened back to float32 on unpacking); a header without dtypes (an older blob) is all float32.
/// </summary>
internal static class ModelBlob
{
    public sealed record Contents(IReadOnlyDictionary<string, string> Files, IReadOnlyDictionary<string, Tensor> Tensors);

    /// <param name="bf16">Floating-point tensors travel as bf16 (half the bytes, not bit-exact); <see cref="Unpack"/> widens them to float32.</param>
    public static byte[] Pack(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? files = null, bool bf16 = false)
    {
        var list = tensors.Select(kv => (kv.Key, T: kv.Value.detach().to(Wire(kv.Value.dtype, bf16)).cpu().contiguous())).ToList();
        var header = new JsonObject
        {
            ["files"] = new JsonObject((files ?? new Dictionary<string, string>()).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["tensors"] = new JsonArray(list.Select(x => (JsonNode)new JsonObject
            {
                ["name"] = x.Key,
                ["shape"] = new JsonArray(x.T.shape.Select(d => (JsonNode)d).ToArray()),
                ["dtype"] = DTypeNames[x.T.dtype],
            }).ToArray()),
        };
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write(headerBytes.Length);
        w.Write(headerBytes);
        foreach (var (_, t) in list)
        {
            w.Write(t.bytes);
            t.Dispose();
        }
        w.Flush();
        return ms.ToArray();
    }

    static readonly Dictionary<ScalarType, string> DTypeNames = new()
    {
        [ScalarType.Float32] = "F32", [ScalarType.Int16] = "I16", [ScalarType.Int8] = "I8", [ScalarType.Byte] = "U8",
        [ScalarType.Int32] = "I32", [ScalarType.Int64] = "I64", [ScalarType.BFloat16] = "BF16",
    };

    /// <summary>What a tensor of <paramref name="dtype"/> travels as: float32 (or bf16) for floating point, itself for integers.</summary>
    static ScalarType Wire(ScalarType dtype, bool bf16) =>
        dtype is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64 ? (bf16 ? ScalarType.BFloat16 : ScalarType.Float32) : dtype;

    /// <summary>A blob with its floating-point tensors narrowed to bf16 (rounded to nearest even): what a bf16 weight sync sends.</summary>
    public static byte[] ToBf16(byte[] blob)
    {
        using var scope = NewDisposeScope();
        var contents = Unpack(blob);
        return Pack(contents.Tensors, contents.Files, bf16: true);
    }

    public static Contents Unpack(byte[] blob)
    {
        if (blob.Length < 4) throw new InvalidDataException("model blob is truncated");
        int headerLength = BitConverter.ToInt32(blob, 0);
        if (headerLength <= 0 || headerLength > blob.Length - 4) throw new InvalidDataException("model blob header is corrupt");
        var header = JsonNode.Parse(Encoding.UTF8.GetString(blob, 4, headerLength))!.AsObject();
        int offset = 4 + headerLength;
        var tensors = new Dictionary<string, Tensor>();
        foreach (var node in header["tensors"]!.AsArray())
        {
            string name = node!["name"]!.GetValue<string>();
            long[] shape = node["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
            string dtypeName = node["dtype"]?.GetValue<string>() ?? "F32";
            if (!DTypeNames.ContainsValue(dtypeName)) throw new InvalidDataException($"model blob: tensor {name} has unknown dtype {dtypeName}");
            var dtype = DTypeNames.First(kv => kv.Value == dtypeName).Key;
            var t = empty(shape, dtype: dtype);
            long bytes = t.numel() * t.ElementSize;
            if (offset + bytes > blob.Length) { t.Dispose(); throw new InvalidDataException($"model blob is truncated inside tensor {name}"); }
            blob.AsSpan(offset, (int)bytes).CopyTo(t.bytes);
            // bf16 is a wire encoding (a bf16 weight sync): the receiver's tensors are float32, as with any other blob.
            if (dtype == ScalarType.BFloat16) { var wide = t.to(ScalarType.Float32); t.Dispose(); t = wide; }
            tensors[name] = t;
            offset += (int)bytes;
        }
        if (offset != blob.Length) throw new InvalidDataException($"model blob has {blob.Length - offset} trailing bytes");
        var fileMap = (header["files"] as JsonObject ?? new JsonObject()).ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());
        return new Contents(fileMap, tensors);
    }

    /// <summary>Copies unpacked tensors into a module's parameters and buffers; every name must match in shape.</summary>
    public static void CopyInto(TorchSharp.torch.nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string? prefix = null)
    {
        var state = module.state_dict();
        var missing = new List<string>();
        foreach (var (name, target) in state)
        {
            string key = prefix + name;
            if (!tensors.TryGetValue(key, out var source)) { missing.Add(key); continue; }
            if (!source.shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"tensor {key}: shape [{string.Join(", ", source.shape)}] does not match the model's [{string.Join(", ", target.shape)}]");
        }
        if (missing.Count > 0) throw new InvalidDataException($"weights are missing {missing.Count} tensors: {string.Join(", ", missing.Take(5))}");
        using var _ = no_grad();
        foreach (var (name, target) in state) target.copy_(tensors[prefix + name]);
    }
}
