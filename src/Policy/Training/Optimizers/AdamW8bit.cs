using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Optimizers;

/// <summary>
/// AdamW whose two moments are kept as 8-bit block-wise codes (Dettmers et al. 2021; bitsandbytes' <c>AdamW8bit</c>):
/// the first moment with the signed dynamic map, the second with the unsigned one, one fp32 absmax per block — about
/// 2 bytes of state per weight instead of 8. Each update dequantizes a chunk of blocks to fp32, applies torch's AdamW
/// update to it (decoupled decay, bias correction, ε outside the square root) with the fresh gradient, and
/// requantizes; a chunk is at most <see cref="ChunkValues"/> values, so no fp32 copy of a whole parameter's moments
/// (let alone all of them) exists at once. As in bitsandbytes, parameters with fewer than <see cref="MinQuantizedSize"/>
/// values (biases, norms) keep fp32 moments: they are a sliver of the memory and the most sensitive to rounding.
/// </summary>
internal sealed class AdamW8bit : IDisposable
{
    /// <summary>Parameters smaller than this keep fp32 moments (bitsandbytes' <c>min_8bit_size</c>).</summary>
    public const int MinQuantizedSize = 4096;
    /// <summary>Values updated at once: 2^20 (512 blocks of 2048), so a chunk's fp32 temporaries are a few MiB.</summary>
    public const int ChunkValues = 1 << 20;

    const string Magic = "RLFT-ADAMW8BIT";
    const int FormatVersion = 1;

    readonly IReadOnlyList<Parameter> _parameters;
    readonly State[] _state;
    readonly double _beta1, _beta2, _eps, _weightDecay;
    readonly BlockwiseQuantizer _first, _second;

    public double LearningRate { get; set; }
    public int BlockSize => _first.BlockSize;

    public AdamW8bit(IReadOnlyList<Parameter> parameters, double lr, double beta1, double beta2, double eps, double weightDecay, int blockSize = 2048)
    {
        _parameters = parameters;
        (LearningRate, _beta1, _beta2, _eps, _weightDecay) = (lr, beta1, beta2, eps, weightDecay);
        var device = parameters.Count > 0 ? parameters[0].device : CPU;
        _first = new BlockwiseQuantizer(signed: true, blockSize, device);
        _second = new BlockwiseQuantizer(signed: false, blockSize, device);
        _state = new State[parameters.Count];
    }

    /// <summary>Bytes of optimizer state held now (codes, absmaxes and the fp32 moments of small parameters).</summary>
    public long StateBytes => _state.Where(s => s is not null).Sum(s => s.Bytes);

    /// <summary>The state of parameter <paramref name="i"/> as fp32 moments (for tests and inspection); null before its first update.</summary>
    public (Tensor M, Tensor V)? Moments(int i)
    {
        var s = _state[i];
        if (s is null) return null;
        if (s.M32 is not null) return (s.M32.clone().view(_parameters[i].shape), s.V32!.clone().view(_parameters[i].shape));
        return (_first.Dequantize(s.MCodes!, s.MAbsmax!).view(_parameters[i].shape), _second.Dequantize(s.VCodes!, s.VAbsmax!).view(_parameters[i].shape));
    }

    /// <summary>The step count of parameter <paramref name="i"/> (0 before its first update).</summary>
    public long StepOf(int i) => _state[i]?.Step ?? 0;

    /// <summary>One AdamW update of every parameter that has a gradient.</summary>
    public void Step()
    {
        using var _ = no_grad();
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i];
            if (p.grad is not { } grad) continue;
            using var scope = NewDisposeScope();
            var s = _state[i] ??= new State(p, _first);
            s.Step++;
            double bc1 = 1 - Math.Pow(_beta1, s.Step), bc2 = 1 - Math.Pow(_beta2, s.Step);
            double stepSize = LearningRate / bc1, bc2Sqrt = Math.Sqrt(bc2);
            if (!p.is_contiguous()) throw new InvalidOperationException($"parameter {i} ({string.Join("×", p.shape)}) is not contiguous: the 8-bit optimizer updates it through a flat view");
            var flat = p.detach().view(-1);                                   // (n) aliases the parameter
            var g = grad.reshape(-1);                                         // (n)
            long n = flat.shape[0];
            for (long start = 0; start < n; start += ChunkValues)
            {
                using var chunkScope = NewDisposeScope();
                long len = Math.Min(ChunkValues, n - start);
                var pc = flat.narrow(0, start, len);
                var gc = g.narrow(0, start, len);
                Tensor m, v;
                if (s.M32 is not null) (m, v) = (s.M32, s.V32!);
                else
                {
                    long b0 = start / BlockSize, nb = _first.Blocks(len);
                    m = _first.Dequantize(s.MCodes!.narrow(0, start, len), s.MAbsmax!.narrow(0, b0, nb));
                    v = _second.Dequantize(s.VCodes!.narrow(0, start, len), s.VAbsmax!.narrow(0, b0, nb));
                }
                if (_weightDecay != 0) pc.mul_(1 - LearningRate * _weightDecay);
                m.mul_(_beta1).add_(gc, alpha: 1 - _beta1);
                v.mul_(_beta2).addcmul_(gc, gc, value: 1 - _beta2);
                var denom = v.sqrt().div_(bc2Sqrt).add_(_eps);
                pc.addcdiv_(m, denom, value: -stepSize);
                if (s.M32 is null)
                {
                    long b0 = start / BlockSize, nb = _first.Blocks(len);
                    _first.Quantize(m, s.MCodes!.narrow(0, start, len), s.MAbsmax!.narrow(0, b0, nb));
                    _second.Quantize(v, s.VCodes!.narrow(0, start, len), s.VAbsmax!.narrow(0, b0, nb));
                }
            }
        }
    }

    /// <summary>Writes the state bit for bit: step counts, codes, absmaxes and small parameters' fp32 moments.</summary>
    public void Save(string path)
    {
        using var w = new BinaryWriter(File.Create(path));
        w.Write(Magic);
        w.Write(FormatVersion);
        w.Write(BlockSize);
        w.Write(_parameters.Count);
        for (int i = 0; i < _parameters.Count; i++)
        {
            var s = _state[i];
            w.Write(_parameters[i].numel());
            w.Write(s?.Step ?? 0L);
            if (s is null) { w.Write((byte)0); continue; }
            if (s.M32 is not null) { w.Write((byte)1); WriteFloats(w, s.M32); WriteFloats(w, s.V32!); }
            else
            {
                w.Write((byte)2);
                w.Write(s.MCodes!.cpu().data<byte>().ToArray()); WriteFloats(w, s.MAbsmax!);
                w.Write(s.VCodes!.cpu().data<byte>().ToArray()); WriteFloats(w, s.VAbsmax!);
            }
        }
    }

    /// <summary>Whether <paramref name="path"/> holds state this optimizer wrote (by its header).</summary>
    public static bool IsOwnFormat(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        try { return r.BaseStream.Length > Magic.Length && r.ReadString() == Magic; }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException) { return false; }
    }

    /// <summary>Restores state written by <see cref="Save"/>; refuses state of another shape or block size, naming the file.</summary>
    public void Load(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        if (!IsOwnFormat(path) || r.ReadString() != Magic) throw new InvalidDataException($"{path}: not 8-bit AdamW state");
        int version = r.ReadInt32(), block = r.ReadInt32(), count = r.ReadInt32();
        if (version != FormatVersion) throw new InvalidDataException($"{path}: 8-bit AdamW state format {version}, expected {FormatVersion}");
        if (block != BlockSize) throw new InvalidDataException($"{path}: saved with block size {block}, the optimizer uses {BlockSize}");
        if (count != _parameters.Count) throw new InvalidDataException($"{path}: state for {count} parameters, the optimizer has {_parameters.Count}");
        using var _ = no_grad();
        for (int i = 0; i < count; i++)
        {
            var p = _parameters[i];
            long n = r.ReadInt64(), step = r.ReadInt64();
            byte kind = r.ReadByte();
            if (n != p.numel()) throw new InvalidDataException($"{path}: parameter {i} has {n} values in the state, {p.numel()} in the model");
            if (kind == 0) { _state[i]?.Dispose(); _state[i] = null!; continue; }
            var s = new State(p, _first) { Step = step };
            if ((kind == 1) != (s.M32 is not null)) throw new InvalidDataException($"{path}: parameter {i} state kind {kind} does not fit its size {n}");
            if (kind == 1) { ReadFloats(r, s.M32!); ReadFloats(r, s.V32!); }
            else
            {
                ReadBytes(r, s.MCodes!); ReadFloats(r, s.MAbsmax!);
                ReadBytes(r, s.VCodes!); ReadFloats(r, s.VAbsmax!);
            }
            _state[i]?.Dispose();
            _state[i] = s;
        }
    }

    static void WriteFloats(BinaryWriter w, Tensor t)
    {
        var a = t.cpu().contiguous().data<float>().ToArray();
        var bytes = new byte[a.Length * sizeof(float)];
        Buffer.BlockCopy(a, 0, bytes, 0, bytes.Length);
        w.Write(bytes);
    }

    static void ReadFloats(BinaryReader r, Tensor into)
    {
        int n = checked((int)into.numel());
        var bytes = r.ReadBytes(n * sizeof(float));
        if (bytes.Length != n * sizeof(float)) throw new EndOfStreamException("8-bit AdamW state ends early");
        var a = new float[n];
        Buffer.BlockCopy(bytes, 0, a, 0, bytes.Length);
        using var t = tensor(a);
        into.copy_(t.view(into.shape));
    }

    static void ReadBytes(BinaryReader r, Tensor into)
    {
        int n = checked((int)into.numel());
        var bytes = r.ReadBytes(n);
        if (bytes.Length != n) throw new EndOfStreamException("8-bit AdamW state ends early");
        using var t = tensor(bytes);
        into.copy_(t);
    }

    public void Dispose()
    {
        foreach (var s in _state) s?.Dispose();
        _first.Dispose();
        _second.Dispose();
    }

    /// <summary>One parameter's moments: fp32 (small parameters) or codes and absmaxes.</summary>
    sealed class State : IDisposable
    {
        public long Step;
        public readonly Tensor? M32, V32, MCodes, MAbsmax, VCodes, VAbsmax;

        public State(Parameter p, BlockwiseQuantizer q)
        {
            long n = p.numel();
            if (n < MinQuantizedSize)
            {
                M32 = zeros(n, dtype: ScalarType.Float32, device: p.device).DetachFromDisposeScope();   // flat, as the update reads it
                V32 = zeros(n, dtype: ScalarType.Float32, device: p.device).DetachFromDisposeScope();
                return;
            }
            // Moments start at zero: any code times an absmax of 0.
            MCodes = zeros(n, dtype: ScalarType.Byte, device: p.device).DetachFromDisposeScope();
            VCodes = zeros(n, dtype: ScalarType.Byte, device: p.device).DetachFromDisposeScope();
            MAbsmax = zeros(q.Blocks(n), dtype: ScalarType.Float32, device: p.device).DetachFromDisposeScope();
            VAbsmax = zeros(q.Blocks(n), dtype: ScalarType.Float32, device: p.device).DetachFromDisposeScope();
        }

        public long Bytes => M32 is not null ? 2 * M32.numel() * 4 : MCodes!.numel() + VCodes!.numel() + 4 * (MAbsmax!.numel() + VAbsmax!.numel());

        public void Dispose()
        {
            foreach (var t in new[] { M32, V32, MCodes, MAbsmax, VCodes, VAbsmax }) t?.Dispose();
        }
    }
}
