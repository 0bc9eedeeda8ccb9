using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

public class RopeAndGqaTests
{
    [Fact]
    public void Rotary_embedding_matches_the_rotate_half_formula()
    {
        const int d = 8; const double theta = 10000;
        var rope = new RotaryEmbedding(d, theta, 64, null, CPU);
        var x = randn(new long[] { 1, 2, 5, d }, generator: new Generator(11));   // (B, H, T, D)
        var positions = tensor(new long[] { 0, 1, 2, 7, 30 }).unsqueeze(0);        // (B, T)
        var (cos, sin) = rope.For(positions);
        var actual = RotaryEmbedding.Apply(x, cos, sin).data<float>().ToArray();
        var xs = x.data<float>().ToArray();
        var pos = new[] { 0, 1, 2, 7, 30 };
        for (int h = 0; h < 2; h++)
            for (int t = 0; t < 5; t++)
                for (int i = 0; i < d / 2; i++)
                {
                    double angle = pos[t] * Math.Pow(theta, -2.0 * i / d);
                    int b0 = (h * 5 + t) * d;
                    double x1 = xs[b0 + i], x2 = xs[b0 + i + d / 2];
                    Assert.Equal(x1 * Math.Cos(angle) - x2 * Math.Sin(angle), actual[b0 + i], 4);
                    Assert.Equal(x2 * Math.Cos(angle) + x1 * Math.Sin(angle), actual[b0 + i + d / 2], 4);
                }
    }

    [Fact]
    public void Grouped_query_attention_matches_per_head_attention_over_shared_kv_heads()
    {
        var config = TinyModels.Config("llama");   // 4 query heads share 2 KV heads, head_dim 8
        var attn = new LlamaAttention(config, 0);
        using (no_grad()) foreach (var p in attn.parameters()) p.normal_(0, 0.3, new Generator(5));
        var rope = new RotaryEmbedding(config.HeadDim, config.RopeTheta, 64, null, CPU);
        long t = 6;
        var x = randn(new long[] { 1, t, 32 }, generator: new Generator(6));
        var (cos, sin) = rope.For(arange(t).unsqueeze(0));
        using var _ = no_grad();
        var actual = attn.Forward(x, new LayerContext(new AttentionMask(null, true), null, cos, sin));   // (1, T, 32)

        // Direct: each query head h uses KV head h / 2, softmax(q kᵀ / √d + causal) v, then o_proj.
        var q = RotaryEmbedding.Apply(x.matmul(attn.q_proj.weight.t()).view(1, t, 4, 8).transpose(1, 2), cos, sin);
        var k = RotaryEmbedding.Apply(x.matmul(attn.k_proj.weight.t()).view(1, t, 2, 8).transpose(1, 2), cos, sin);
        var v = x.matmul(attn.v_proj.weight.t()).view(1, t, 2, 8).transpose(1, 2);
        var causal = ones(t, t).tril().logical_not();
        var heads = new List<Tensor>();
        for (int h = 0; h < 4; h++)
        {
            var scores = q[0, h].matmul(k[0, h / 2].t()) / Math.Sqrt(8);             // (T, T)
            var w = scores.masked_fill(causal, double.NegativeInfinity).softmax(-1);
            heads.Add(w.matmul(v[0, h / 2]));                                          // (T, 8)
        }
        var expected = cat(heads, 1).matmul(attn.o_proj.weight.t()).unsqueeze(0);     // (1, T, 32)
        Assert.True(actual.allclose(expected, 1e-5, 1e-5), $"max diff {(actual - expected).abs().max().item<float>()}");
    }

    [Fact]
    public void Left_padded_rows_compute_what_the_unpadded_sequence_computes()
    {
        using var model = TinyModels.Create("llama");
        using var _ = no_grad();
        var ids = tensor(new long[] { 3, 14, 15, 92, 65 }).unsqueeze(0);
        using var alone = model.Forward(ids);
        var padded = tensor(new long[] { 0, 0, 3, 14, 15, 92, 65 }).unsqueeze(0);
        var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1 }).unsqueeze(0);
        using var withPad = model.Forward(padded, mask);
        var a = alone.Logits[0]; var b = withPad.Logits[0].narrow(0, 2, 5);
        Assert.True(a.allclose(b, 1e-5, 1e-5), $"max diff {(a - b).abs().max().item<float>()}");
    }
}
