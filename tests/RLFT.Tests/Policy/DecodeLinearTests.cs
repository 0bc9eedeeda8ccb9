using System.Runtime.Intrinsics.X86;
using FsCheck.Xunit;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Tests.Policy;

/// <summary>
/// The decoding step's small-batch projection against libtorch's: random shapes in both weight layouts, the cases it
/// must leave to libtorch (autograd, one row, many rows, odd widths, bf16), and whole decoding steps of tiny models.
/// </summary>
public class DecodeLinearTests
{
    static bool Vectorized => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>libtorch's y = x Wᵀ + b, for either layout.</summary>
    static Tensor Reference(Tensor x, Tensor w, Tensor? b, bool transposed) =>
        transposed ? (b is null ? x.matmul(w) : x.matmul(w) + b) : F.linear(x, w, b);

    [Property(MaxTest = 80)]
    public void Equals_libtorch_for_any_small_batch_in_both_layouts(byte rowsSeed, byte inSeed, byte outSeed, bool transposed, bool withBias, bool threeDims, int seed)
    {
        int m = DecodeLinear.MinRows + rowsSeed % (DecodeLinear.MaxRows - DecodeLinear.MinRows + 1);
        int k = 8 * (1 + inSeed % 12);
        // (in, out) weights need out divisible by 8; (out, in) ones take any out (tiles of 3 rows and a remainder).
        int n = transposed ? 8 * (1 + outSeed % 9) : 1 + outSeed % 75;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(uint)seed);
        var x = threeDims && m % 2 == 0 ? randn([m / 2, 2, k], generator: gen) : randn([m, k], generator: gen);
        var w = transposed ? randn([k, n], generator: gen) : randn([n, k], generator: gen);
        var b = withBias ? randn([n], generator: gen) : null;
        Assert.Equal(Vectorized, DecodeLinear.Applies(x, w, b, m, k, n, transposed));
        var y = DecodeLinear.Forward(x, w, b, transposed);
        var expected = Reference(x, w, b, transposed);
        Assert.Equal(expected.shape, y.shape);
        // Sums of k products of unit normals in another order: fp32 rounding of a few ulps of √k-sized values.
        double error = (y - expected).abs().max().item<float>();
        Assert.True(error < 1e-5 * k, $"m {m}, k {k}, n {n}, transposed {transposed}: max |diff| {error}");
    }

    [Fact]
    public void Leaves_autograd_one_row_many_rows_odd_widths_and_bf16_to_libtorch()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(7);
        var w = randn([24, 16], generator: g);
        Assert.False(DecodeLinear.Applies(randn([1, 16], generator: g), w, null, 1, 16, 24, false));                  // one row: MKL's gemv
        Assert.False(DecodeLinear.Applies(randn([17, 16], generator: g), w, null, 17, 16, 24, false));                // packing pays from 17 rows
        var odd = randn([24, 12], generator: g);
        Assert.False(DecodeLinear.Applies(randn([4, 12], generator: g), odd, null, 4, 12, 24, false));                // in % 8 ≠ 0
        Assert.False(DecodeLinear.Applies(randn([4, 16], generator: g), randn([16, 20], generator: g), null, 4, 16, 20, true));      // (in, out) with out % 8 ≠ 0
        Assert.False(DecodeLinear.Applies(randn([4, 16], dtype: ScalarType.BFloat16, generator: g), w.to(ScalarType.BFloat16), null, 4, 16, 24, false));

        // With autograd on and the weight requiring grad, the product must be recorded: libtorch's path, gradients flow.
        var trainable = randn([24, 16], generator: g).requires_grad_(true);
        var x = randn([4, 16], generator: g);
        Assert.False(DecodeLinear.Applies(x, trainable, null, 4, 16, 24, false));
        var y = DecodeLinear.Forward(x, trainable, null);
        y.sum().backward();
        Assert.NotNull(trainable.grad);
        double gradError = (trainable.grad - x.sum(dim: 0).unsqueeze(0)).abs().max().item<float>();
        Assert.True(gradError < 1e-5, $"gradient off by {gradError}");   // ∂Σy/∂W = Σ_rows x, every row
        // The same weight under no_grad (a decoding step of a trainable policy) takes the fast path.
        using (no_grad()) Assert.Equal(Vectorized, DecodeLinear.Applies(x, trainable, null, 4, 16, 24, false));
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void A_cached_decoding_step_matches_the_libtorch_path(string arch)
    {
        // The same step twice: under no_grad the projections take the small-batch path; with autograd on, the parameters
        // require grad and every projection is libtorch's.
        using var model = TinyModels.Create(arch);
        model.eval();
        using var scope = NewDisposeScope();
        var prompt = randint(1, TinyModels.Vocab, [8, 5], generator: new Generator(3));
        var next = randint(1, TinyModels.Vocab, [8, 1], generator: new Generator(4));
        Tensor Step(bool grad)
        {
            using var mode = grad ? enable_grad() : no_grad();
            using var cache = model.CreateCache(8, 8);
            using (var prefill = model.Forward(prompt, null, cache, logitsToKeep: 1)) { }
            using var output = model.Forward(next, null, cache, logitsToKeep: 1);
            return output.Logits.detach().clone();                                   // (8, 1, V)
        }
        var fast = Step(grad: false);
        var plain = Step(grad: true);
        double error = (fast - plain).abs().max().item<float>();
        Assert.True(error < 1e-4, $"{arch}: max |logit diff| {error}");
    }
}
