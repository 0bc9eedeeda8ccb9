using static TorchSharp.torch;

namespace Rlft.Policy.Quantization;

/// <summary>How a frozen base weight is stored.</summary>
public enum QuantizationKind
{
    None,
    /// <summary>4-bit NormalFloat, absmax scale per block of 64 (QLoRA); ≈0.52 bytes per weight with double quantization.</summary>
    Nf4,
    /// <summary>int8 with one absmax scale per output channel (row); 1 + 4/in bytes per weight.</summary>
    Int8,
}

/// <summary>
/// A frozen linear weight W (out, in) in 4 or 8 bits. NF4 flattens W row-major into blocks of 64 (the last one
/// padded with zeros), stores each block's absmax (fp32, or 8-bit with <see cref="ScaleQuantizer"/>) and each weight's
/// nearest NF4 level of w / absmax, two codes per byte. int8 stores round(w / s) with s = max|row| / 127 per row.
/// <see cref="Dequantize"/> rebuilds W in a float dtype; nothing else ever holds W in full precision.
/// </summary>
internal sealed class QuantizedWeight : IDisposable
{
    public const int BlockSize = 64;
    /// <summary>Blocks dequantized per pass (16M weights): bounds the temporaries of the largest layers.</summary>
    const long BlocksPerChunk = 1 << 18;

    public QuantizationKind Kind { get; }
    public long OutFeatures { get; }
    public long InFeatures { get; }
    /// <summary>NF4: packed codes, four per int16 (blocks·16,) (see <see cref="Nf4.ToQuads"/>). int8: codes, int8 (out, in).</summary>
    public Tensor Data { get; }
    /// <summary>NF4: absmax per block, fp32 (blocks,), or int8 (blocks,) when double-quantized. int8: scale per row, fp32 (out,).</summary>
    public Tensor Scales { get; }
    /// <summary>Double quantization only: fp32 scale per 256 blocks, and the fp32 offset (1,).</summary>
    public Tensor? ScaleScales { get; }
    public Tensor? ScaleOffset { get; }

    public bool DoubleQuant => ScaleScales is not null;
    public long Count => OutFeatures * InFeatures;
    public long Blocks => (Count + BlockSize - 1) / BlockSize;
    public Device Device => Data.device;

    /// <summary>Bytes held: codes and every level of scales.</summary>
    public long Bytes => Tensors().Sum(t => t.Tensor.numel() * t.Tensor.ElementSize);

    public QuantizedWeight(QuantizationKind kind, long outFeatures, long inFeatures, Tensor data, Tensor scales, Tensor? scaleScales = null, Tensor? scaleOffset = null)
    {
        if (kind == QuantizationKind.None) throw new ArgumentException("a quantized weight needs a kind", nameof(kind));
        if ((scaleScales is null) != (scaleOffset is null)) throw new ArgumentException("double quantization needs both the group scales and the offset");
        if (kind == QuantizationKind.Int8 && scaleScales is not null) throw new ArgumentException("double quantization applies to nf4 only");
        (Kind, OutFeatures, InFeatures, Data, Scales, ScaleScales, ScaleOffset) = (kind, outFeatures, inFeatures, data, scales, scaleScales, scaleOffset);
        foreach (var (name, _, dtype, shape) in Expected(kind, outFeatures, inFeatures, scaleScales is not null))
        {
            var actual = Tensors().First(x => x.Name == name).Tensor;
            if (actual.dtype != dtype || !actual.shape.SequenceEqual(shape))
                throw new ArgumentException($"{name}: expected {dtype} [{string.Join(", ", shape)}], got {actual.dtype} [{string.Join(", ", actual.shape)}]");
        }
    }

    /// <summary>Quantizes <paramref name="weight"/> (out, in), any float dtype, on its device.</summary>
    public static QuantizedWeight Quantize(Tensor weight, QuantizationKind kind, bool doubleQuant = true)
    {
        if (weight.dim() != 2) throw new ArgumentException($"a linear weight is 2-D, got [{string.Join(", ", weight.shape)}]");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long rows = weight.shape[0], cols = weight.shape[1];
        var w = weight.detach().to(ScalarType.Float32);
        QuantizedWeight q;
        if (kind == QuantizationKind.Int8)
        {
            var scale = w.abs().amax([1]) / 127;                                                  // (out,)
            var codes = (w / scale.clamp_min(float.Epsilon).unsqueeze(1)).round().clamp(-127, 127).to(ScalarType.Int8); // (out, in)
            q = new QuantizedWeight(kind, rows, cols, codes.contiguous(), scale.contiguous());
        }
        else if (kind == QuantizationKind.Nf4)
        {
            long n = rows * cols, blocks = (n + BlockSize - 1) / BlockSize;
            var flat = w.reshape(-1);
            if (blocks * BlockSize != n) flat = cat([flat, zeros(blocks * BlockSize - n, device: w.device)]);
            var grid = flat.view(blocks, BlockSize);                                               // (blocks, 64)
            var absmax = grid.abs().amax([1]);                                                     // (blocks,)
            var codes = Nf4.Encode(grid / absmax.clamp_min(float.Epsilon).unsqueeze(1));           // (blocks, 64) uint8
            var packed = Nf4.ToQuads(Nf4.Pack(codes.view(-1)));                                    // (blocks·16,) int16
            if (doubleQuant)
            {
                var (sc, gs, off) = ScaleQuantizer.Quantize(absmax);
                q = new QuantizedWeight(kind, rows, cols, packed, sc, gs, off);
            }
            else q = new QuantizedWeight(kind, rows, cols, packed, absmax.contiguous());
        }
        else throw new ArgumentException($"cannot quantize to {kind}");
        foreach (var (_, t) in q.Tensors()) t.MoveToOuterDisposeScope();
        return q;
    }

    /// <summary>A weight of this layout from its stored tensors, looked up by name (<see cref="Expected"/>); shapes and dtypes are checked.</summary>
    public static QuantizedWeight FromTensors(QuantizationKind kind, long outFeatures, long inFeatures, bool doubleQuant, Func<string, Tensor> tensor)
    {
        var parts = Expected(kind, outFeatures, inFeatures, doubleQuant).Select(e => tensor(e.Name)).ToList();
        return new QuantizedWeight(kind, outFeatures, inFeatures, parts[0], parts[1], parts.ElementAtOrDefault(2), parts.ElementAtOrDefault(3));
    }

    /// <summary>An uninitialised weight of this layout (to receive stored or transferred tensors).</summary>
    public static QuantizedWeight Empty(QuantizationKind kind, long outFeatures, long inFeatures, bool doubleQuant, Device? device = null)
    {
        var layout = Expected(kind, outFeatures, inFeatures, doubleQuant).ToDictionary(e => e.Name);
        return FromTensors(kind, outFeatures, inFeatures, doubleQuant, name => empty(layout[name].Shape, dtype: layout[name].DType, device: device));
    }

    /// <summary>The fp32 absmax of every NF4 block (blocks,), after undoing double quantization.</summary>
    public Tensor BlockScales()
    {
        if (Kind != QuantizationKind.Nf4) throw new InvalidOperationException("block scales belong to nf4");
        return DoubleQuant ? ScaleQuantizer.Dequantize(Scales, ScaleScales!, ScaleOffset!) : Scales.alias();
    }

    /// <summary>
    /// W (out, in) in <paramref name="dtype"/>: the one full-precision copy of this layer. NF4 is one gather per four
    /// weights from <see cref="Nf4.QuadTable"/> and one multiply by the block scales; layers above
    /// <see cref="BlocksPerChunk"/> blocks are rebuilt a chunk at a time into the output, bounding the temporaries.
    /// </summary>
    public Tensor Dequantize(ScalarType dtype = ScalarType.Float32)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        Tensor output;
        if (Kind == QuantizationKind.Int8)
            output = Data.to(dtype).mul_(Scales.to(dtype).unsqueeze(1));                          // (out, in)
        else
        {
            var table = Nf4.QuadTable(dtype, Device);                                              // (65536, 4)
            var absmax = BlockScales().to(dtype);                                                   // (blocks,)
            if (Blocks <= BlocksPerChunk) output = Nf4Blocks(table, absmax, 0, Blocks).view(-1);    // (blocks·64,)
            else
            {
                output = empty(Blocks * BlockSize, dtype: dtype, device: Device);
                for (long start = 0; start < Blocks; start += BlocksPerChunk)
                {
                    using var chunk = NewDisposeScope();
                    long nb = Math.Min(BlocksPerChunk, Blocks - start);
                    output.narrow(0, start * BlockSize, nb * BlockSize).view(nb, BlockSize).copy_(Nf4Blocks(table, absmax, start, nb));
                }
            }
            output = Count == output.shape[0] ? output.view(OutFeatures, InFeatures) : output.narrow(0, 0, Count).view(OutFeatures, InFeatures).contiguous();
        }
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Blocks [start, start + count) → (count, 64) levels × absmax.</summary>
    Tensor Nf4Blocks(Tensor table, Tensor absmax, long start, long count)
    {
        const long quadsPerBlock = BlockSize / 4;
        if (Nf4Kernel.Applies(Device, table.dtype))
        {
            var result = empty(count * BlockSize, dtype: ScalarType.Float32, device: Device);
            Nf4Kernel.Dequantize(Data.narrow(0, start * quadsPerBlock, count * quadsPerBlock), absmax.narrow(0, start, count).contiguous(), result);
            return result.view(count, BlockSize);
        }
        var index = Data.narrow(0, start * quadsPerBlock, count * quadsPerBlock).to(ScalarType.Int64).add_(32768);  // (count·16,)
        return table.index_select(0, index).view(count, BlockSize).mul_(absmax.narrow(0, start, count).unsqueeze(1)); // (count, 64)
    }

    /// <summary>The stored tensors by their suffix on the layer (<c>weight_nf4</c>, <c>weight_absmax</c>, …).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> Tensors()
    {
        if (Kind == QuantizationKind.Int8)
        {
            yield return ("weight_int8", Data);
            yield return ("weight_scale", Scales);
            yield break;
        }
        yield return ("weight_nf4", Data);
        yield return ("weight_absmax", Scales);
        if (ScaleScales is not null) yield return ("weight_absmax_scale", ScaleScales);
        if (ScaleOffset is not null) yield return ("weight_absmax_offset", ScaleOffset);
    }

    /// <summary>Every stored tensor's name, dtype and shape for a layout (what a receiver allocates and checks against).</summary>
    public static IReadOnlyList<(string Name, string Meaning, ScalarType DType, long[] Shape)> Expected(QuantizationKind kind, long outFeatures, long inFeatures, bool doubleQuant)
    {
        long n = outFeatures * inFeatures, blocks = (n + BlockSize - 1) / BlockSize;
        return kind switch
        {
            QuantizationKind.Int8 =>
            [
                ("weight_int8", "codes", ScalarType.Int8, [outFeatures, inFeatures]),
                ("weight_scale", "row scales", ScalarType.Float32, [outFeatures]),
            ],
            QuantizationKind.Nf4 when doubleQuant =>
            [
                ("weight_nf4", "packed codes", ScalarType.Int16, [blocks * BlockSize / 4]),
                ("weight_absmax", "block scales (int8)", ScalarType.Int8, [blocks]),
                ("weight_absmax_scale", "scale group scales", ScalarType.Float32, [(blocks + ScaleQuantizer.GroupSize - 1) / ScaleQuantizer.GroupSize]),
                ("weight_absmax_offset", "scale offset", ScalarType.Float32, [1]),
            ],
            QuantizationKind.Nf4 =>
            [
                ("weight_nf4", "packed codes", ScalarType.Int16, [blocks * BlockSize / 4]),
                ("weight_absmax", "block scales", ScalarType.Float32, [blocks]),
            ],
            _ => throw new ArgumentException($"no layout for {kind}"),
        };
    }

    public void Dispose()
    {
        foreach (var (_, t) in Tensors()) t.Dispose();
    }
}
