using System.Runtime.Intrinsics.X86;
using FsCheck.Xunit;
using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>
/// The decoding step's single-query attention against libtorch's (AttentionKernel with the kernel off): random shapes,
/// grouped KV heads, masks, scales and soft-caps over strided cache views; what it leaves to libtorch; whole generations.
/// </summary>
public class DecodeAttentionTests
{
    static bool Vectorized => Avx2.IsSupported && Fma.IsSupported;

    static Tensor Reference(Tensor q, Tensor k, Tensor v, AttentionMask mask, double? scale, double? softcap)
    {
        DecodeAttention.Disabled = true;
        try { return AttentionKernel.Attend(q, k, v, mask, scale, softcap); }
        finally { DecodeAttention.Disabled = false; }
    }

    [Property(MaxTest = 80)]
    public void Equals_libtorch_for_any_heads_length_mask_scale_and_cap(byte batchSeed, byte kvSeed, byte groupSeed, byte lengthSeed, byte widthSeed,
        bool masked, bool scaled, bool capped, byte offsetSeed, int seed)
    {
        int b = 1 + batchSeed % 5, kv = 1 + kvSeed % 3, heads = kv * (1 + groupSeed % 3), s = 1 + lengthSeed % 40, d = 8 * (1 + widthSeed % 8);
        int offset = offsetSeed % 3, capacity = offset + s + offsetSeed % 5;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(uint)seed);
        var q = randn([b, heads, 1, d], generator: gen);
        // The cache's layout: (B, kv, capacity, D) storage, the keys so far a slice of it along the sequence.
        var k = randn([b, kv, capacity, d], generator: gen).narrow(2, offset, s);
        var v = randn([b, kv, capacity, d], generator: gen).narrow(2, offset, s);
        Tensor? allowed = null;
        if (masked)
        {
            allowed = rand([b, 1, 1, s], generator: gen) > 0.4;
            allowed[TensorIndex.Ellipsis, s - 1] = tensor(true);                 // a query always sees itself
        }
        var mask = new AttentionMask(allowed, false);
        double? scale = scaled ? 0.3 : null, softcap = capped ? 2.0 : null;
        Assert.Equal(Vectorized, DecodeAttention.Applies(q, k, v, mask));
        var y = AttentionKernel.Attend(q, k, v, mask, scale, softcap);
        var expected = Reference(q, k, v, mask, scale, softcap);
        Assert.Equal(expected.shape, y.shape);
        double error = (y - expected).abs().max().item<float>();
        Assert.True(error < 1e-5, $"b {b} heads {heads}/{kv} s {s} d {d} masked {masked}: max |diff| {error}");
    }

    [Fact]
    public void Leaves_several_queries_autograd_a_causal_mask_odd_widths_and_bf16_to_libtorch()
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 4, 1, 16); var k = randn(2, 2, 5, 16); var v = randn(2, 2, 5, 16);
        var none = new AttentionMask(null, false);
        using (no_grad())
        {
            Assert.Equal(Vectorized, DecodeAttention.Applies(q, k, v, none));
            Assert.False(DecodeAttention.Applies(randn(2, 4, 3, 16), k, v, none));                       // a prefill's queries
            Assert.False(DecodeAttention.Applies(q, k, v, new AttentionMask(null, true)));                // causal
            Assert.False(DecodeAttention.Applies(randn(2, 4, 1, 12), randn(2, 2, 5, 12), randn(2, 2, 5, 12), none));   // D % 8
            Assert.False(DecodeAttention.Applies(q.to(ScalarType.BFloat16), k.to(ScalarType.BFloat16), v.to(ScalarType.BFloat16), none));
            Assert.False(DecodeAttention.Applies(randn(2, 3, 1, 16), k, v, none));                       // heads not a multiple of kv
        }
        var trained = randn(2, 4, 1, 16).requires_grad_();
        Assert.False(DecodeAttention.Applies(trained, k, v, none));
    }

    [Theory]
    [InlineData("gpt2", 0)]
    [InlineData("llama", 0)]
    [InlineData("qwen2", 4)]
    [InlineData("gemma2", 0)]
    [InlineData("phi3", 0)]
    public void Generation_gives_the_tokens_and_log_probs_of_libtorchs_attention(string arch, int slots)
    {
        using var model = TinyModels.Create(arch, seed: 5);
        // Prompts of different lengths: left padding gives the steps a mask; 20 new tokens pass the sliding windows.
        var prompts = new List<int[]> { new[] { 1, 5, 9, 2, 4, 4, 7 }, new[] { 3, 4 }, new[] { 7, 7, 7, 1 }, new[] { 2, 8, 6, 3, 3 }, new[] { 4 } };
        var options = new GenerationOptions { MaxNewTokens = 20, Temperature = 0, Slots = slots, StopTokenIds = [-1] };
        var fast = TextGenerator.Generate(model, prompts, options, 0, 0);
        GenerationResult plain;
        DecodeAttention.Disabled = true;
        try { plain = TextGenerator.Generate(model, prompts, options, 0, 0); }
        finally { DecodeAttention.Disabled = false; }
        for (int i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(plain.Tokens[i], fast.Tokens[i]);
            for (int j = 0; j < plain.Tokens[i].Length; j++) Assert.Equal(plain.LogProbs[i][j], fast.LogProbs[i][j], 1e-4f);
        }
    }
}
