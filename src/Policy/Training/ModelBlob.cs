using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>
/// Model weights as one byte blob for weight sync: a JSON header (small text files such as config.json and
/// tokenizer.json, so a replica can be built from the blob alone, plus each tensor's name and shape)
/// followed by the float32 data of every tensor. Packing and unpacking are bit-exact.
/// </summary>
public static class ModelBlob
{
    public sealed record Contents(IReadOnlyDictionary<string, string> Files, IReadOnlyDictionary<string, Tensor> Tensors);

    public static byte[] Pack(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? files = null)
    {
        var list = tensors.Select(kv => (kv.Key, T: kv.Value.detach().to(ScalarType.Float32).cpu().contiguous())).ToList();
        var header = new JsonObject
        {
            ["files"] = new JsonObject((files ?? new Dictionary<string, string>()).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["tensors"] = new JsonArray(list.Select(x => (JsonNode)new JsonObject
            {
                ["name"] = x.Key,
                ["shape"] = new JsonArray(x.T.shape.Select(d => (JsonNode)d).ToArray()),
            }).ToArray()),
        };
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write(headerBytes.Length);
        w.Write(headerBytes);
        foreach (var (_, t) in list)
        {
            w.Write(MemoryMarshal.AsBytes(t.data<float>().ToArray().AsSpan()));
            t.Dispose();
        }
        w.Flush();
        return ms.ToArray();
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
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (offset + count * 4 > blob.Length) throw new InvalidDataException($"model blob is truncated inside tensor {name}");
            var data = MemoryMarshal.Cast<byte, float>(blob.AsSpan(offset, (int)(count * 4))).ToArray();
            tensors[name] = tensor(data, shape);
            offset += (int)(count * 4);
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
