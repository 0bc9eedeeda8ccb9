using FsCheck.Xunit;
using Rlft.Policy.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>Random weight matrices of random shapes (most not a multiple of the block size) and scales.</summary>
public class QuantizationProperties
{
    [Property(MaxTest = 60)]
    public void Dequantized_weights_are_within_the_bound_and_codes_in_range(byte rowsSeed, byte colsSeed, int seed, bool doubleQuant, bool int8)
    {
        long rows = 1 + rowsSeed % 70, cols = 1 + colsSeed % 150;
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(uint)seed);
        // Rows of very different magnitudes, some all zero: blocks with tiny, large and zero absmax.
        var scale = rand([rows, 1], generator: gen).pow(4) * 10 * (rand([rows, 1], generator: gen) > 0.1).to(ScalarType.Float32);
        var w = randn([rows, cols], generator: gen) * scale;
        var kind = int8 ? QuantizationKind.Int8 : QuantizationKind.Nf4;
        using var q = QuantizedWeight.Quantize(w, kind, doubleQuant);
        var error = (q.Dequantize() - w).abs();
        Assert.True(QuantizationBounds.Within(w, q, error), QuantizationBounds.Describe(w, q, error));
        if (int8)
        {
            Assert.True((q.Data.to(ScalarType.Int32).abs() <= 127).all().item<bool>());
            return;
        }
        var codes = Nf4.Unpack(Nf4.FromQuads(q.Data), q.Blocks * QuantizedWeight.BlockSize);
        Assert.True((codes < 16).all().item<bool>());
        // Padding beyond the weights encodes zero.
        var pad = codes.narrow(0, q.Count, q.Blocks * QuantizedWeight.BlockSize - q.Count);
        Assert.True((pad == Nf4.ZeroCode).all().item<bool>());
    }

    [Property(MaxTest = 100)]
    public void Packing_round_trips_for_any_length(byte[] values)
    {
        using var scope = NewDisposeScope();
        var codes = tensor(values.Select(v => (byte)(v % 16)).ToArray(), dtype: ScalarType.Byte);
        Assert.True(Nf4.Unpack(Nf4.Pack(codes), values.Length).Equals(codes));
    }
}
