using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Training;

namespace Rlft.Tests.Actors;

public class WeightBlobTests
{
    static byte[] Data(int n) => Enumerable.Range(0, n).Select(i => (byte)(i * 7 + 3)).ToArray();

    [Theory]
    [InlineData(0, 16)]
    [InlineData(1, 16)]
    [InlineData(16, 16)]
    [InlineData(100, 16)]
    [InlineData(100, 1000)]
    public void Chunks_reassemble_bit_exactly_in_any_order(int size, int chunkSize)
    {
        var data = Data(size);
        var blob = new WeightBlob(WeightKind.Policy, 3, data, chunkSize: chunkSize);
        var asm = new WeightAssembler(blob.Announcement);
        foreach (int i in Enumerable.Range(0, blob.Announcement.ChunkCount).Reverse())
            Assert.True(asm.Accept(blob.Chunk(i)));
        Assert.True(asm.IsComplete);
        Assert.Equal(data, asm.Assemble());
    }

    [Fact]
    public void A_corrupted_chunk_is_refused_and_refetching_it_completes_the_blob()
    {
        var data = Data(100);
        var blob = new WeightBlob(WeightKind.Policy, 1, data, chunkSize: 30);
        var asm = new WeightAssembler(blob.Announcement);
        var bad = blob.Chunk(2);
        var flipped = (byte[])bad.Data.Clone();
        flipped[0] ^= 0xff;
        Assert.False(asm.Accept(bad with { Data = flipped }));
        Assert.False(asm.Accept(blob.Chunk(0) with { Version = 2 }));
        Assert.Equal(2, asm.Rejected);
        Assert.Equal([0, 1, 2, 3], asm.Missing);
        foreach (var i in asm.Missing.ToList()) asm.Accept(blob.Chunk(i));
        Assert.Equal(data, asm.Assemble());
    }

    [Fact]
    public void A_bf16_blob_is_about_half_the_bytes_and_widens_to_float32_within_2_to_the_minus_8()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        TorchSharp.torch.manual_seed(3);
        var tensors = new Dictionary<string, TorchSharp.torch.Tensor>
        {
            ["w"] = TorchSharp.torch.randn(64, 48) * 0.02,
            ["b"] = TorchSharp.torch.zeros(48),
            ["ids"] = TorchSharp.torch.arange(10),
        };
        var fp32 = ModelBlob.Pack(tensors);
        var bf16 = ModelBlob.ToBf16(fp32);
        Assert.True(bf16.Length < fp32.Length * 0.6, $"{bf16.Length} B as bf16 vs {fp32.Length} B");
        var back = ModelBlob.Unpack(bf16).Tensors;
        Assert.Equal(TorchSharp.torch.ScalarType.Float32, back["w"].dtype);
        Assert.True(back["ids"].Equals(tensors["ids"]));
        Assert.True(back["b"].Equals(tensors["b"]));
        double worst = ((back["w"] - tensors["w"]).abs() / tensors["w"].abs()).max().item<float>();
        Assert.True(worst is > 0 and <= 1.0 / 256, $"max relative error {worst}");
    }

    [Fact]
    public void Assembling_early_is_an_error()
    {
        var blob = new WeightBlob(WeightKind.Policy, 1, Data(50), chunkSize: 10);
        var asm = new WeightAssembler(blob.Announcement);
        asm.Accept(blob.Chunk(0));
        Assert.Contains("1/5 chunks", Assert.Throws<InvalidOperationException>(() => asm.Assemble()).Message);
    }
}
