using System.Buffers.Binary;
using System.Collections;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Encoders;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using Rlft.Tests.Encoders;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>
/// pytorch_model.bin checkpoints. No Python here, so the fixtures come from two writers: TorchSharp.PyBridge's
/// torch.save-compatible pickler (a whole model's state dict, compared bitwise with the safetensors load), and
/// <see cref="TorchPickle"/>, which writes the pickle bytes torch.save writes, for the cases PyBridge never produces
/// (shared storages, strides, _metadata, forbidden globals).
/// </summary>
public class TorchBinFileTests
{
    static Tensor Ids => tensor(new long[] { 4, 8, 15, 16, 23, 42 }).unsqueeze(0);

    static Tensor Logits(CausalLM model)
    {
        using var _ = no_grad();
        using var o = model.Forward(Ids);
        return o.Logits.clone();
    }

    /// <summary>A copy of <paramref name="dir"/> without its safetensors: config and tokenizer files only.</summary>
    static string CopyWithoutWeights(string dir)
    {
        string copy = TinyModels.TempDir();
        foreach (var f in Directory.GetFiles(dir).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal)))
            File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        return copy;
    }

    [Fact]
    public void A_gpt2_checkpoint_saved_by_PyBridge_loads_bit_exact_against_its_safetensors()
    {
        string dir = TinyModels.TempDir();
        ModelPresets.InitModel("gpt2", "tiny", dir, seed: 3).Dispose();   // rlft init-model's code path
        using var reference = Checkpoint.Load(dir);
        string bin = CopyWithoutWeights(dir);
        reference.save_py(Path.Combine(bin, Checkpoint.BinWeightsFile));

        Assert.Equal(new[] { Path.Combine(bin, Checkpoint.BinWeightsFile) }, Checkpoint.WeightFiles(bin));
        Assert.Empty(ModelDirectory.Check(bin, out _));
        using var loaded = Checkpoint.Load(bin);
        Assert.True(Logits(reference).Equals(Logits(loaded)));
    }

    [Fact]
    public void A_bert_checkpoint_saved_by_PyBridge_loads_bit_exact_against_its_safetensors()
    {
        string dir = TinyEncoders.Directory("bert");
        using var reference = EncoderCheckpoint.Load(dir);
        string bin = CopyWithoutWeights(dir);
        reference.save_py(Path.Combine(bin, Checkpoint.BinWeightsFile));

        Assert.Empty(ModelDirectory.CheckEncoder(bin, out _, exactHead: true));
        using var loaded = EncoderCheckpoint.Load(bin);
        var ids = tensor(new long[] { 2, 10, 11, 12, 3, 13, 14, 3 }).unsqueeze(0);
        var types = tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1 }).unsqueeze(0);
        using var noGrad = no_grad();
        using var a = reference.Forward(ids, null, types);
        using var b = loaded.Forward(ids, null, types);
        Assert.True(a.Logits.Equals(b.Logits));
    }

    [Fact]
    public void A_two_shard_index_loads_like_the_single_file()
    {
        string dir = TinyModels.TempDir();
        ModelPresets.InitModel("gpt2", "tiny", dir, seed: 4).Dispose();
        using var reference = Checkpoint.Load(dir);
        string sharded = CopyWithoutWeights(dir);
        var state = reference.state_dict().ToList();
        var weightMap = new JsonObject();
        for (int shard = 0; shard < 2; shard++)
        {
            string name = $"pytorch_model-0000{shard + 1}-of-00002.bin";
            var part = new Hashtable();
            foreach (var (key, t) in state.Where((_, i) => i % 2 == shard)) { part[key] = t; weightMap[key] = name; }
            PyTorchPickler.PickleStateDict(Path.Combine(sharded, name), part);
        }
        File.WriteAllText(Path.Combine(sharded, Checkpoint.BinIndexFile), new JsonObject { ["weight_map"] = weightMap }.ToJsonString());

        Assert.Equal(2, Checkpoint.WeightFiles(sharded).Count);
        Assert.Empty(ModelDirectory.Check(sharded, out _));
        using var loaded = Checkpoint.Load(sharded);
        Assert.True(Logits(reference).Equals(Logits(loaded)));
    }

    [Fact]
    public void Quantizing_at_load_reads_a_bin_as_it_reads_safetensors()
    {
        using var model = TinyModels.Create("qwen2", std: 0.05);
        string dir = TinyModels.TempDir();
        Checkpoint.Save(model, dir);
        string bin = CopyWithoutWeights(dir);
        model.save_py(Path.Combine(bin, Checkpoint.BinWeightsFile));
        var options = new QuantizationOptions { Kind = QuantizationKind.Nf4 };
        using var fromSafetensors = ModelQuantizer.Load(dir, options);
        using var fromBin = ModelQuantizer.Load(bin, options);
        var a = fromSafetensors.state_dict();
        foreach (var (name, t) in fromBin.state_dict()) Assert.True(a[name].Equals(t), name);
    }

    [Fact]
    public void Safetensors_take_precedence_over_a_bin_beside_them()
    {
        string dir = TinyModels.TempDir();
        ModelPresets.InitModel("gpt2", "tiny", dir, seed: 5).Dispose();
        File.WriteAllText(Path.Combine(dir, Checkpoint.BinWeightsFile), "not read");
        File.WriteAllText(Path.Combine(dir, Checkpoint.BinIndexFile), "not read either");
        Assert.Equal(new[] { Path.Combine(dir, Checkpoint.WeightsFile) }, Checkpoint.WeightFiles(dir));
        Assert.Empty(ModelDirectory.Check(dir, out _));
        Checkpoint.Load(dir).Dispose();
    }

    [Fact]
    public void Tensors_sharing_a_storage_and_a_transposed_view_come_out_as_torch_builds_them()
    {
        // torch.save of {a: s[0:6].view(2, 3), b: s[6:9], t: a.t()} where s = arange(12): one storage, three views.
        var storage = arange(12, dtype: ScalarType.Float32);
        var p = new TorchPickle();
        string path = p.Write(TempFile(), [
            ("a", new("0", storage, 0, [2, 3], [3, 1])),
            ("b", new("0", storage, 6, [3], [1])),
            ("t", new("0", storage, 0, [3, 2], [1, 3])),
        ]);

        var shapes = TorchBinFile.Describe(path);
        Assert.Equal(new long[] { 2, 3 }, shapes["a"].Shape);
        Assert.Equal(new long[] { 3, 2 }, shapes["t"].Shape);
        var tensors = TorchBinFile.Load(path);
        Assert.True(tensors["a"].Equals(tensor(new float[] { 0, 1, 2, 3, 4, 5 }).view(2, 3)));
        Assert.True(tensors["b"].Equals(tensor(new float[] { 6, 7, 8 })));
        Assert.True(tensors["t"].Equals(tensor(new float[] { 0, 1, 2, 3, 4, 5 }).view(2, 3).t()));
        Assert.All(tensors.Values, t => Assert.True(t.is_contiguous()));
        // Streaming yields the same values, the unwanted tensor skipped.
        var streamed = TorchBinFile.ReadEach(path, name => name != "b").ToDictionary(x => x.Name, x => x.Tensor);
        Assert.Equal(new[] { "a", "t" }, streamed.Keys.Order());
        Assert.True(streamed["t"].Equals(tensors["t"]));
    }

    [Fact]
    public void Half_and_bfloat16_storages_keep_their_dtype_and_bits()
    {
        var half = tensor(new float[] { 1.5f, -2f, 0.25f, 65504f }).to(ScalarType.Float16);
        var bf16 = tensor(new float[] { 1.5f, -2f, 0.3f, 3e38f }).to(ScalarType.BFloat16);
        var ids = tensor(new long[] { 7, -1, 1L << 40 });
        string path = new TorchPickle().Write(TempFile(), [
            ("half", new("0", half, 0, [2, 2], [2, 1])),
            ("bf16", new("1", bf16, 1, [3], [1])),
            ("position_ids", new("2", ids, 0, [1, 3], [3, 1])),
        ]);
        var tensors = TorchBinFile.Load(path);
        Assert.Equal(ScalarType.Float16, tensors["half"].dtype);
        Assert.True(tensors["half"].Equals(half.view(2, 2)));
        Assert.Equal(ScalarType.BFloat16, tensors["bf16"].dtype);
        Assert.True(tensors["bf16"].Equals(bf16.narrow(0, 1, 3)));
        Assert.True(tensors["position_ids"].Equals(ids.view(1, 3)));
    }

    [Fact]
    public void The_metadata_torch_sets_on_a_state_dict_through_BUILD_is_accepted_and_ignored()
    {
        var w = ones(2);
        string path = new TorchPickle { Metadata = true }.Write(TempFile(), [("w", new("0", w, 0, [2], [1]))]);
        Assert.Equal(new[] { "w" }, TorchBinFile.Describe(path).Keys);
        Assert.True(TorchBinFile.Load(path)["w"].Equals(w));
    }

    [Theory]
    [InlineData("os", "system", false)]
    [InlineData("builtins", "eval", true)]
    [InlineData("torch.nn.modules.linear", "Linear", false)]
    public void A_global_outside_the_state_dict_allow_list_is_refused_by_name(string module, string name, bool stackGlobal)
    {
        string path = new TorchPickle { Forbidden = (module, name, stackGlobal) }.Write(TempFile(), [("w", new("0", ones(2), 0, [2], [1]))]);
        var e = Assert.Throws<InvalidDataException>(() => TorchBinFile.Describe(path));
        Assert.Equal($"{path}: refuses pickle global '{module}.{name}'", e.Message);
        Assert.Throws<InvalidDataException>(() => TorchBinFile.Load(path));
    }

    [Fact]
    public void The_legacy_format_is_refused_with_the_way_out()
    {
        string dir = TinyModels.TempDir();
        ModelPresets.InitModel("gpt2", "tiny", dir, seed: 6).Dispose();
        File.Delete(Path.Combine(dir, Checkpoint.WeightsFile));
        // What torch.save(..., _use_new_zipfile_serialization=False) begins with: protocol 2, then its magic number.
        File.WriteAllBytes(Path.Combine(dir, Checkpoint.BinWeightsFile), [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.StartsWith(Path.Combine(dir, Checkpoint.BinWeightsFile) + ": ", e.Message);
        Assert.Contains("legacy format", e.Message);
        Assert.Contains("safetensors", e.Message);
        var problem = Assert.Single(ModelDirectory.Check(dir, out _));
        Assert.Equal(e.Message, problem);
    }

    [Fact]
    public void A_storage_cut_short_is_a_problem_of_the_up_front_check_naming_the_file()
    {
        string dir = TinyModels.TempDir();
        ModelPresets.InitModel("gpt2", "tiny", dir, seed: 7).Dispose();
        var state = Checkpoint.ReadTensors(dir);
        File.Delete(Path.Combine(dir, Checkpoint.WeightsFile));
        string bin = Path.Combine(dir, Checkpoint.BinWeightsFile);
        new TorchPickle { TruncateStorage = "3" }.Write(bin,
            state.Select((kv, i) => (kv.Key, new TorchPickle.Entry(i.ToString(), kv.Value, 0, kv.Value.shape, kv.Value.stride()))).ToList());
        var problem = Assert.Single(ModelDirectory.Check(dir, out _));
        Assert.StartsWith($"{bin}: tensor ", problem);
        Assert.Contains("truncated", problem);
    }

    static string TempFile() => Path.Combine(TinyModels.TempDir(), Checkpoint.BinWeightsFile);
}

/// <summary>
/// Writes a torch.save zip archive byte for byte as torch (>= 1.6, pickle protocol 2) does: an OrderedDict built with
/// SETITEMS, each tensor a <c>_rebuild_tensor_v2</c> of a persistent-id storage (memoized, so a shared storage's
/// later uses are BINGETs), and optionally the <c>_metadata</c> BUILD and a forbidden global.
/// </summary>
sealed class TorchPickle
{
    /// <summary>A tensor as a view of storage <paramref name="Key"/> (whose elements are <paramref name="Data"/>).</summary>
    public sealed record Entry(string Key, Tensor Data, long Offset, long[] Shape, long[] Stride);

    public bool Metadata { get; init; }
    public (string Module, string Name, bool Stack)? Forbidden { get; init; }
    public string? TruncateStorage { get; init; }

    readonly List<byte> _b = [];
    readonly Dictionary<string, int> _memoOfStorage = [];
    int _memo;

    public string Write(string path, IReadOnlyList<(string Name, Entry Tensor)> tensors)
    {
        Op(0x80); Op(2);
        Global("collections", "OrderedDict"); Put(); Op(')'); Op('R'); Put();
        Op('(');
        foreach (var (name, t) in tensors)
        {
            Str(name);
            Global("torch._utils", "_rebuild_tensor_v2"); Put();
            Op('(');
            Storage(t);
            Int(t.Offset);
            Ints(t.Shape); Ints(t.Stride);
            Op(0x89);                                                          // requires_grad False
            Global("collections", "OrderedDict"); Op(')'); Op('R');            // backward hooks
            Op('t'); Op('R'); Put();
        }
        Op('u');
        if (Forbidden is var (module, fn, stack))
        {
            if (stack) { Str(module); Str(fn); Op(0x93); } else Global(module, fn);
            Str("echo owned"); Op(0x85); Op('R'); Op('0');                     // called, result discarded
        }
        if (Metadata)
        {
            // state_dict._metadata = OrderedDict({'': {'version': 1}}), as nn.Module.state_dict sets it.
            Op('}'); Str("_metadata");
            Global("collections", "OrderedDict"); Op(')'); Op('R');
            Op('('); Str(""); Op('}'); Str("version"); Int(1); Op('s'); Op('u');
            Op('s'); Op('b');
        }
        Op('.');

        using var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create);
        void Add(string name, byte[] bytes) { using var s = zip.CreateEntry("archive/" + name, CompressionLevel.NoCompression).Open(); s.Write(bytes); }
        Add("data.pkl", _b.ToArray());
        Add("byteorder", "little"u8.ToArray());
        foreach (var (_, t) in tensors.DistinctBy(x => x.Tensor.Key))
        {
            var bytes = t.Data.contiguous().bytes.ToArray();
            Add("data/" + t.Key, t.Key == TruncateStorage ? bytes[..(bytes.Length / 2)] : bytes);
        }
        Add("version", "3\n"u8.ToArray());
        return path;
    }

    void Storage(Entry t)
    {
        if (_memoOfStorage.TryGetValue(t.Key, out int m)) { Op('h'); Op((byte)m); return; }
        string type = t.Data.dtype switch
        {
            ScalarType.Float32 => "FloatStorage", ScalarType.Float16 => "HalfStorage", ScalarType.BFloat16 => "BFloat16Storage",
            ScalarType.Int64 => "LongStorage", _ => throw new ArgumentException(t.Data.dtype.ToString()),
        };
        Op('('); Str("storage"); Global("torch", type); Str(t.Key); Str("cpu"); Int(t.Data.numel()); Op('t');
        Op('Q');
        _memoOfStorage[t.Key] = _memo;
        Put();
    }

    void Op(char c) => _b.Add((byte)c);
    void Op(byte b) => _b.Add(b);
    void Put() { Op('q'); Op((byte)_memo++); }
    void Global(string module, string name) { Op('c'); _b.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n")); }

    void Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        Op('X');
        Span<byte> n = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(n, bytes.Length);
        _b.AddRange(n.ToArray()); _b.AddRange(bytes);
    }

    void Int(long v)
    {
        if (v is >= 0 and < 256) { Op('K'); Op((byte)v); return; }
        if (v is >= int.MinValue and <= int.MaxValue)
        {
            Op('J');
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(n, (int)v);
            _b.AddRange(n.ToArray());
            return;
        }
        Op(0x8a); Op(8);
        Span<byte> l = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(l, v);
        _b.AddRange(l.ToArray());
    }

    void Ints(long[] values)
    {
        Op('(');
        foreach (var v in values) Int(v);
        Op('t');
    }
}
