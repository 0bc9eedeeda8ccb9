using System.IO.Compression;
using System.Text;
using static TorchSharp.torch;
using Unpickler = Rlft.Policy.Checkpoints.StateDictUnpickler;

namespace Rlft.Policy.Checkpoints;

/// <summary>
/// Reads (never writes) the state dicts transformers ships as <c>pytorch_model.bin</c>: the zip format of
/// <c>torch.save</c> since PyTorch 1.6, a zip holding <c>&lt;root&gt;/data.pkl</c> (the dict, unpickled by
/// <see cref="StateDictUnpickler"/>, which admits only the globals a state dict needs) and one
/// <c>&lt;root&gt;/data/&lt;key&gt;</c> entry per storage. A tensor is a strided view of a storage, so tied weights
/// (two tensors on one storage) and non-contiguous views come out as torch builds them. The pre-1.6 format is refused.
/// </summary>
internal static class TorchBinFile
{
    /// <summary>One tensor of the file: its dtype and shape, and where its elements lie in which storage.</summary>
    public sealed record TensorInfo(ScalarType DType, long[] Shape, string Storage, long StorageNumel, long Offset, long[] Stride);

    /// <summary>
    /// Every tensor's name, dtype and shape from <c>data.pkl</c> alone: no storage is read, but each one a tensor
    /// uses must be in the archive and long enough for it (a truncated or cut-down file fails here, not later).
    /// </summary>
    public static Dictionary<string, TensorInfo> Describe(string path)
    {
        using var archive = Open(path);
        return Describe(path, archive);
    }

    /// <summary>Every tensor of the file, each contiguous and owning its memory.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        var all = new Dictionary<string, Tensor>();
        try { foreach (var (name, t) in ReadEach(path)) all[name] = t; }
        catch { foreach (var t in all.Values) t.Dispose(); throw; }
        return all;
    }

    /// <summary>
    /// The tensors of one file, storage by storage: each storage is read once, the wanted tensors on it are yielded
    /// (contiguous; a view of the storage when already so, else a copy) and the storage is released before the next
    /// is read, so a loader holds the model and one storage, never the whole file. <paramref name="wanted"/> skips
    /// tensors by name (a storage no wanted tensor uses is not read). The caller disposes each tensor.
    /// </summary>
    public static IEnumerable<(string Name, Tensor Tensor)> ReadEach(string path, Func<string, bool>? wanted = null)
    {
        using var archive = Open(path);
        var infos = Describe(path, archive);
        string root = Root(path, archive);
        foreach (var group in infos.Where(kv => wanted?.Invoke(kv.Key) != false).GroupBy(kv => kv.Value.Storage))
        {
            var first = group.First().Value;
            var storage = empty(first.StorageNumel, dtype: first.DType);
            try { ReadInto(archive.GetEntry(root + "data/" + group.Key)!, storage); }
            catch (Exception e) when (e is IOException or EndOfStreamException)
            {
                storage.Dispose();
                throw new InvalidDataException($"{path}: storage data/{group.Key}: {e.Message}", e);
            }
            using (storage)
            {
                bool alone = group.Count() == 1;
                foreach (var (name, info) in group)
                {
                    // A storage that is exactly its one tensor becomes that tensor; a view of a shared storage (tied
                    // weights) or a strided one is copied out, so every tensor yielded owns contiguous memory.
                    if (alone && info.Offset == 0 && info.Shape.Aggregate(1L, (a, d) => a * d) == info.StorageNumel && IsContiguous(info))
                    {
                        yield return (name, storage.view(info.Shape));
                        continue;
                    }
                    using var view = storage.as_strided(info.Shape, info.Stride, info.Offset);
                    yield return (name, view.is_contiguous() ? view.clone() : view.contiguous());
                }
            }
        }
    }

    static bool IsContiguous(TensorInfo info)
    {
        long expected = 1;
        for (int i = info.Shape.Length - 1; i >= 0; i--)
        {
            if (info.Shape[i] != 1 && info.Stride[i] != expected) return false;
            expected *= info.Shape[i];
        }
        return true;
    }

    static Dictionary<string, TensorInfo> Describe(string path, ZipArchive archive)
    {
        string root = Root(path, archive);
        if (archive.GetEntry(root + "byteorder") is { } order)
        {
            using var reader = new StreamReader(order.Open(), Encoding.ASCII);
            string value = reader.ReadToEnd().Trim();
            if (value != "little") throw new InvalidDataException($"{path}: storages are {value}-endian; RLFT reads little-endian ones (re-save on a little-endian machine or convert to safetensors)");
        }
        var pickle = archive.GetEntry(root + "data.pkl")!;
        if (pickle.Length > 1L << 30) throw new InvalidDataException($"{path}: data.pkl is {pickle.Length} bytes, too large for a state dict");
        var bytes = new byte[pickle.Length];
        try { using var s = pickle.Open(); s.ReadExactly(bytes); }
        catch (Exception e) when (e is IOException or EndOfStreamException) { throw new InvalidDataException($"{path}: data.pkl: {e.Message}", e); }

        var dict = Unpickler.Load(bytes, path) as Unpickler.PyDict
                   ?? throw new InvalidDataException($"{path}: data.pkl holds no dict of tensors (a whole pickled model is not read; save its state_dict())");
        var infos = new Dictionary<string, TensorInfo>();
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name) throw new InvalidDataException($"{path}: a state-dict key that is not a string ({key})");
            if (value is not Unpickler.TensorRef t) throw new InvalidDataException($"{path}: '{name}' is not a tensor");
            var entry = archive.GetEntry(root + "data/" + t.Storage.Key)
                        ?? throw new InvalidDataException($"{path}: tensor {name}: storage data/{t.Storage.Key} is missing from the archive");
            long bytesNeeded = t.Storage.Numel * ElementSize(t.Storage.DType);
            if (entry.Length < bytesNeeded)
                throw new InvalidDataException($"{path}: tensor {name}: storage data/{t.Storage.Key} has {entry.Length} bytes, {bytesNeeded} expected (truncated?)");
            infos[name] = new TensorInfo(t.Storage.DType, t.Shape, t.Storage.Key, t.Storage.Numel, t.Offset, t.Stride);
        }
        return infos;
    }

    /// <summary>Opens the zip, refusing the legacy (pre-1.6) format and anything that is not a torch.save archive.</summary>
    static ZipArchive Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file not found: {path}", path);
        var fs = File.OpenRead(path);
        try
        {
            Span<byte> magic = stackalloc byte[4];
            int n = fs.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
            if (n < 4 || magic[0] != 'P' || magic[1] != 'K' || magic[2] != 3 || magic[3] != 4)
                throw new InvalidDataException(n >= 1 && magic[0] == 0x80
                    ? $"{path}: saved in torch.save's legacy format (PyTorch before 1.6), which RLFT does not read: re-save it with a current torch.save, or convert it to model.safetensors"
                    : $"{path}: not a torch.save zip archive");
            fs.Position = 0;
            var archive = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: false);
            Root(path, archive);
            return archive;
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            fs.Dispose();
            throw new InvalidDataException($"{path}: not a readable zip archive ({e.Message})", e);
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>The archive's top folder (<c>archive/</c> in current torch, the file's stem in older ones).</summary>
    static string Root(string path, ZipArchive archive)
    {
        var pickles = archive.Entries.Where(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal)
                                                 && e.FullName.Count(c => c == '/') == 1 && e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)).ToList();
        if (pickles.Count != 1) throw new InvalidDataException($"{path}: a torch.save archive holds one <root>/data.pkl; found {pickles.Count}");
        return pickles[0].FullName[..^"data.pkl".Length];
    }

    static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>Fills a flat CPU tensor from a zip entry, in slices of at most 256 MiB (a span is int-sized).</summary>
    static void ReadInto(ZipArchiveEntry entry, Tensor flat)
    {
        using var stream = entry.Open();
        long count = flat.shape[0], perSlice = Math.Max(1, (256L << 20) / flat.ElementSize);
        for (long start = 0; start < count; start += perSlice)
        {
            using var slice = flat.narrow(0, start, Math.Min(perSlice, count - start));
            stream.ReadExactly(slice.bytes);
        }
    }
}
