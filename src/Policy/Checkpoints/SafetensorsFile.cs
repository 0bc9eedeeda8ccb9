using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Rlft.Policy.Checkpoints;

/// <summary>
/// safetensors I/O through TorchSharp.PyBridge. PyBridge writes no <c>__metadata__</c> block, and transformers'
/// <c>from_pretrained</c> rejects a file without <c>{"format": "pt"}</c> there; so after PyBridge writes, the header
/// is rewritten with that block added (the tensor bytes and their offsets are untouched; the header stays padded
/// to a multiple of 8 bytes as the reference writer does).
/// </summary>
public static class SafetensorsFile
{
    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file not found: {path}", path);
        try { return Safetensors.LoadStateDict(path); }
        catch (Exception e) when (e is not FileNotFoundException) { throw new InvalidDataException($"{path}: not a readable safetensors file ({e.Message})", e); }
    }

    /// <summary>Writes <paramref name="tensors"/> (CPU, contiguous) atomically: a temp file, then a rename.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var dict = tensors.ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().contiguous());
        string tmp = path + ".tmp";
        try
        {
            Safetensors.SaveStateDict(tmp, dict);
            var meta = new Dictionary<string, string> { ["format"] = "pt" };
            if (metadata is not null) foreach (var kv in metadata) meta[kv.Key] = kv.Value;
            WithMetadata(tmp, path, meta);
        }
        finally
        {
            foreach (var (k, t) in dict) if (!ReferenceEquals(t, tensors[k])) t.Dispose();
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>The JSON header of a safetensors file (tensor entries and <c>__metadata__</c>).</summary>
    public static JsonObject ReadHeader(string path)
    {
        using var fs = File.OpenRead(path);
        Span<byte> len = stackalloc byte[8];
        fs.ReadExactly(len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > 100_000_000UL || (long)n > fs.Length - 8) throw new InvalidDataException($"{path}: header length {n} is invalid");
        var header = new byte[n];
        fs.ReadExactly(header);
        return JsonNode.Parse(Encoding.UTF8.GetString(header).TrimEnd(' ', '\0')) as JsonObject
               ?? throw new InvalidDataException($"{path}: header is not a JSON object");
    }

    static void WithMetadata(string source, string destination, IReadOnlyDictionary<string, string> metadata)
    {
        var header = ReadHeader(source);
        long dataStart;
        using (var probe = File.OpenRead(source))
        {
            Span<byte> len = stackalloc byte[8];
            probe.ReadExactly(len);
            dataStart = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(len);
        }
        var meta = new JsonObject();
        foreach (var kv in metadata) meta[kv.Key] = kv.Value;
        var rebuilt = new JsonObject { ["__metadata__"] = meta };
        foreach (var kv in header) if (kv.Key != "__metadata__") rebuilt[kv.Key] = kv.Value?.DeepClone();
        var bytes = Encoding.UTF8.GetBytes(rebuilt.ToJsonString());
        int padded = (bytes.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        Array.Fill(headerBytes, (byte)' ');
        bytes.CopyTo(headerBytes, 0);
        string tmp = destination + ".part";
        using (var src = File.OpenRead(source))
        using (var dst = File.Create(tmp))
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            dst.Write(len);
            dst.Write(headerBytes);
            src.Seek(dataStart, SeekOrigin.Begin);
            src.CopyTo(dst);
        }
        File.Move(tmp, destination, overwrite: true);
    }
}
