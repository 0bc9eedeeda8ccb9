using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Rlft.Policy.Checkpoints;

/// <summary>
/// safetensors I/O through TorchSharp.PyBridge. PyBridge writes no <c>__metadata__</c> block, and transformers'
/// <c>from_pretrained</c> rejects a file without <c>{"format": "pt"}</c> there; so after PyBridge writes, the header
/// is rewritten with that block added (the tensor bytes and their offsets are untouched; the header stays padded
/// to a multiple of 8 bytes as the reference writer does).
/// </summary>
internal static class SafetensorsFile
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

    /// <summary>
    /// Writes an F32 safetensors file tensor by tensor: the header (every name, shape and byte range, and
    /// <c>{"format": "pt"}</c>) first, then each tensor's bytes as <paramref name="make"/> produces it (CPU, float32,
    /// <c>entries[i].Shape</c>), disposed once written — so a model larger than memory can be written, one tensor
    /// resident at a time. Atomic: a temp file, then a rename.
    /// </summary>
    public static void WriteStreamed(string path, IReadOnlyList<(string Name, long[] Shape)> entries, Func<int, Tensor> make)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (name, shape) in entries)
        {
            long bytes = shape.Aggregate(1L, (a, d) => a * d) * 4;
            header[name] = new JsonObject
            {
                ["dtype"] = "F32", ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = new byte[(json.Length + 7) / 8 * 8];
        Array.Fill(padded, (byte)' ');
        json.CopyTo(padded, 0);
        string tmp = path + ".part";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded.Length);
                fs.Write(len);
                fs.Write(padded);
                for (int i = 0; i < entries.Count; i++)
                {
                    using var scope = NewDisposeScope();
                    var t = make(i);
                    if (t.dtype != ScalarType.Float32 || t.device.type != DeviceType.CPU || !t.shape.SequenceEqual(entries[i].Shape))
                        throw new InvalidOperationException($"{entries[i].Name}: expected a CPU float32 tensor of shape [{string.Join(", ", entries[i].Shape)}]");
                    WriteBytes(fs, t.contiguous());
                }
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }

    /// <summary>A contiguous CPU tensor's bytes, in slices of at most 256 MiB along dim 0 (a span is int-sized).</summary>
    static void WriteBytes(Stream stream, Tensor t)
    {
        long total = t.numel() * t.ElementSize;
        if (total <= 256L << 20 || t.dim() == 0) { stream.Write(t.bytes); return; }
        long rowBytes = total / t.shape[0], rows = Math.Max(1, (256L << 20) / rowBytes);
        for (long r = 0; r < t.shape[0]; r += rows)
        {
            using var piece = t.narrow(0, r, Math.Min(rows, t.shape[0] - r));
            stream.Write(piece.bytes);
        }
    }

    /// <summary>One tensor as a safetensors header describes it.</summary>
    public sealed record TensorInfo(string DType, long[] Shape, long Begin, long End);

    static readonly Dictionary<string, int> DTypeBytes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
        ["F8_E4M3"] = 1, ["F8_E5M2"] = 1, ["U16"] = 2, ["U32"] = 4, ["U64"] = 8,
    };

    /// <summary>
    /// Every tensor's dtype, shape and byte range from the header alone (no data read), checked the way a reader
    /// would fail later: a header that is not JSON, an entry without dtype/shape/offsets, a byte range that does
    /// not fit its shape and dtype, or data that runs past the end of the file (a truncated download).
    /// </summary>
    public static Dictionary<string, TensorInfo> Describe(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file not found: {path}", path);
        long fileLength = new FileInfo(path).Length;
        if (fileLength < 8) throw new InvalidDataException($"{path}: not a safetensors file ({fileLength} bytes)");
        JsonObject header;
        long dataStart;
        try
        {
            header = ReadHeader(path);
            using var fs = File.OpenRead(path);
            Span<byte> len = stackalloc byte[8];
            fs.ReadExactly(len);
            dataStart = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(len);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or EndOfStreamException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: not a safetensors file (header: {e.Message.Split('.')[0]})", e);
        }
        var tensors = new Dictionary<string, TensorInfo>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            try
            {
                var entry = node as JsonObject ?? throw new InvalidDataException("not an object");
                string dtype = entry["dtype"]?.GetValue<string>() ?? throw new InvalidDataException("no dtype");
                if (!DTypeBytes.TryGetValue(dtype, out int size)) throw new InvalidDataException($"unknown dtype {dtype}");
                var shape = (entry["shape"] as JsonArray ?? throw new InvalidDataException("no shape")).Select(d => d!.GetValue<long>()).ToArray();
                var offsets = entry["data_offsets"] as JsonArray ?? throw new InvalidDataException("no data_offsets");
                if (offsets.Count != 2) throw new InvalidDataException("data_offsets needs two numbers");
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                long bytes = shape.Aggregate(1L, (a, d) => a * d) * size;
                if (shape.Any(d => d < 0) || begin < 0 || end - begin != bytes)
                    throw new InvalidDataException($"data_offsets [{begin}, {end}] do not hold shape [{string.Join(", ", shape)}] of {dtype}");
                if (dataStart + end > fileLength)
                    throw new InvalidDataException($"its data ends at byte {dataStart + end} but the file has {fileLength} (truncated?)");
                tensors[name] = new TensorInfo(dtype, shape, begin, end);
            }
            catch (Exception e) when (e is InvalidDataException or InvalidOperationException or FormatException or System.Text.Json.JsonException)
            {
                throw new InvalidDataException($"{path}: tensor {name}: {e.Message}", e);
            }
        }
        return tensors;
    }

    static readonly Dictionary<string, ScalarType> DTypes = new()
    {
        ["F64"] = ScalarType.Float64, ["F32"] = ScalarType.Float32, ["F16"] = ScalarType.Float16, ["BF16"] = ScalarType.BFloat16,
        ["I64"] = ScalarType.Int64, ["I32"] = ScalarType.Int32, ["I16"] = ScalarType.Int16, ["I8"] = ScalarType.Int8, ["U8"] = ScalarType.Byte,
        ["BOOL"] = ScalarType.Bool,
    };

    /// <summary>
    /// The tensors of one file read one at a time, in file order and in their stored dtype, so that a loader can
    /// convert or quantize each and drop it before the next is read (the whole file is never in memory at once).
    /// <paramref name="wanted"/> skips tensors by name without reading them. The caller disposes each tensor.
    /// </summary>
    public static IEnumerable<(string Name, Tensor Tensor)> ReadEach(string path, Func<string, bool>? wanted = null)
    {
        var infos = Describe(path);
        long dataStart;
        using (var probe = File.OpenRead(path))
        {
            Span<byte> len = stackalloc byte[8];
            probe.ReadExactly(len);
            dataStart = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(len);
        }
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        foreach (var (name, info) in infos.OrderBy(kv => kv.Value.Begin))
        {
            if (wanted?.Invoke(name) == false) continue;
            if (!DTypes.TryGetValue(info.DType, out var dtype)) throw new InvalidDataException($"{path}: tensor {name}: dtype {info.DType} is not supported");
            var t = empty(info.Shape, dtype: dtype);
            try
            {
                fs.Seek(dataStart + info.Begin, SeekOrigin.Begin);
                // Spans are int-sized: read the flat tensor in slices of at most 256 MiB.
                using var flat = t.view(-1);
                long count = flat.shape[0], perSlice = Math.Max(1, (256L << 20) / flat.ElementSize);
                for (long start = 0; start < count; start += perSlice)
                {
                    using var slice = flat.narrow(0, start, Math.Min(perSlice, count - start));
                    fs.ReadExactly(slice.bytes);
                }
            }
            catch (Exception e) when (e is IOException or EndOfStreamException)
            {
                t.Dispose();
                throw new InvalidDataException($"{path}: tensor {name}: {e.Message}", e);
            }
            yield return (name, t);
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
