using System.Text.Json.Nodes;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>The pieces that set the new families apart, each against its direct formula on small tensors.</summary>
public class FamilyPieceTests
{
    static Tensor Randn(long[] shape, ulong seed, double std = 1.0) => randn(shape, generator: new Generator(seed)) * std;

    static void Randomize(nn.Module m, ulong seed, double std = 0.3)
    {
        using var _ = no_grad();
        var gen = new Generator(seed);
        foreach (var p in m.parameters()) p.copy_(randn(p.shape, generator: gen) * std + (p.dim() == 1 ? 1.0 : 0.0));
    }

    static string Diff(Tensor a, Tensor b) => $"max diff {(a - b).abs().max().item<float>():E2}";

    [Fact]
    public void Qwen3_normalises_each_query_and_key_head_before_rope()
    {
        var c = TinyModels.Config("qwen3");          // 4 heads × 16, 2 KV heads, hidden 32
        var attn = new LlamaAttention(c, 0);
        Randomize(attn, 5);
        var rope = new RotaryEmbedding(16, c.RopeTheta, 64, null, CPU);
        long t = 5;
        var x = Randn([1, t, 32], 6);
        var (cos, sin) = rope.For(arange(t).unsqueeze(0));
        using var _ = no_grad();
        var actual = attn.Forward(x, new LayerContext(new AttentionMask(null, true), null, cos, sin));

        Tensor HeadNorm(Tensor h, Tensor w) => h * (h.pow(2).mean([-1L], keepdim: true) + 1e-6).rsqrt() * w;   // over head_dim
        var q = RotaryEmbedding.Apply(HeadNorm(x.matmul(attn.q_proj.weight.t()).view(1, t, 4, 16), attn.q_norm!.weight).transpose(1, 2), cos, sin);
        var k = RotaryEmbedding.Apply(HeadNorm(x.matmul(attn.k_proj.weight.t()).view(1, t, 2, 16), attn.k_norm!.weight).transpose(1, 2), cos, sin);
        var v = x.matmul(attn.v_proj.weight.t()).view(1, t, 2, 16).transpose(1, 2);
        var causal = ones(t, t).tril().logical_not();
        var heads = Enumerable.Range(0, 4).Select(h =>
            (q[0, h].matmul(k[0, h / 2].t()) / 4.0).masked_fill(causal, double.NegativeInfinity).softmax(-1).matmul(v[0, h / 2])).ToList();
        var expected = cat(heads, 1).matmul(attn.o_proj.weight.t()).unsqueeze(0);
        Assert.True(actual.allclose(expected, 1e-5, 1e-5), Diff(actual, expected));
    }

    [Fact]
    public void Gemma_rms_norm_multiplies_by_one_plus_weight_in_float32_before_casting()
    {
        var norm = new GemmaRmsNorm(6, 1e-6);
        using var _ = no_grad();
        norm.weight.copy_(tensor(new[] { -0.5f, 0f, 0.25f, 1f, 2f, -1f }));
        var x = Randn([3, 6], 7);
        var xs = x.data<float>().ToArray(); var ws = norm.weight.data<float>().ToArray();
        var y = norm.forward(x).data<float>().ToArray();
        for (int r = 0; r < 3; r++)
        {
            double ms = Enumerable.Range(0, 6).Average(i => (double)xs[r * 6 + i] * xs[r * 6 + i]);
            for (int i = 0; i < 6; i++) Assert.Equal(xs[r * 6 + i] / Math.Sqrt(ms + 1e-6) * (1 + ws[i]), y[r * 6 + i], 5);
        }
        // bf16 input: normalised and multiplied in float32, rounded to bf16 once at the end.
        var xb = x.to(ScalarType.BFloat16);
        var h = xb.to(ScalarType.Float32);
        var expected = (h * (h.pow(2).mean([-1L], keepdim: true) + 1e-6).rsqrt() * (norm.weight + 1)).to(ScalarType.BFloat16);
        var actual = norm.forward(xb);
        Assert.Equal(ScalarType.BFloat16, actual.dtype);
        Assert.True(actual.Equals(expected));
    }

    [Fact]
    public void Gemma_embeddings_are_scaled_by_the_square_root_of_the_hidden_size()
    {
        // One layer whose blocks output zero, and an eps large enough that the final norm is not scale-invariant:
        // hidden = e·s / √(mean((e·s)²) + eps) · (1 + w) with s = √32 exposes the scale.
        using var model = FamilyTests.Variant("gemma3", o => { o["num_hidden_layers"] = 1; o["rms_norm_eps"] = 1.0; o["sliding_window_pattern"] = 6; }, std: 0.05);
        var m = (GemmaForCausalLM)model;
        using var _ = no_grad();
        m.model.layers[0].self_attn.o_proj.weight.zero_();
        m.model.layers[0].mlp.down_proj.weight.zero_();
        var ids = new long[] { 3, 50, 7 };
        using var output = model.Forward(tensor(ids).unsqueeze(0));
        var e = m.model.embed_tokens.weight!.index_select(0, tensor(ids)) * (float)Math.Sqrt(32);   // (3, 32)
        var expected = e * (e.pow(2).mean([-1L], keepdim: true) + 1.0).rsqrt() * (m.model.norm.weight + 1);
        Assert.True(output.HiddenStates[0].allclose(expected, 1e-6, 1e-5), Diff(output.HiddenStates[0], expected));
        var unscaled = m.model.embed_tokens.weight!.index_select(0, tensor(ids));
        var wrong = unscaled * (unscaled.pow(2).mean([-1L], keepdim: true) + 1.0).rsqrt() * (m.model.norm.weight + 1);
        Assert.False(output.HiddenStates[0].allclose(wrong, 1e-3, 1e-3));
    }

    [Theory]
    [InlineData(4, 0L)]
    [InlineData(4, 3L)]
    [InlineData(1, 2L)]
    public void A_sliding_window_of_w_shows_each_query_itself_and_the_w_minus_1_keys_before_it(int window, long history)
    {
        // transformers' sliding_window_overlay: kv_idx > q_idx − window, on top of kv_idx ≤ q_idx.
        long t = 6, s = history + t;
        var mask = AttentionMask.Build(ones(1, s, dtype: ScalarType.Bool), t, history, anyPadding: false, slidingWindow: window).Mask!;
        var m = mask.reshape(t, s).data<bool>().ToArray();
        for (long i = 0; i < t; i++)
            for (long j = 0; j < s; j++)
            {
                long q = history + i;
                Assert.True(m[i * s + j] == (j <= q && j > q - window), $"query {q}, key {j}");
            }
    }

    [Fact]
    public void A_token_just_outside_a_sliding_layers_window_has_no_influence_and_one_at_its_edge_does()
    {
        // One sliding layer, window 4: the last query (position 7) sees positions 4..7.
        using var model = FamilyTests.Variant("gemma3", o => { o["num_hidden_layers"] = 1; o["sliding_window_pattern"] = 6; });
        Assert.True(model.Config.IsSlidingLayer(0));
        using var _ = no_grad();
        Tensor Last(long[] ids) { using var o = model.Forward(tensor(ids).unsqueeze(0)); return o.Logits[0, -1].clone(); }
        var baseline = Last([1, 2, 3, 4, 5, 6, 7, 8]);
        Assert.True(baseline.allclose(Last([1, 2, 3, 90, 5, 6, 7, 8]), 1e-6, 1e-6));    // position 3 = 7 − 4: outside
        Assert.False(baseline.allclose(Last([1, 2, 3, 4, 90, 6, 7, 8]), 1e-4, 1e-4));   // position 4 = 7 − 3: the edge, inside
        // The full layer of the same model sees everything.
        using var full = FamilyTests.Variant("gemma3", o => { o["num_hidden_layers"] = 1; o["sliding_window_pattern"] = 1; });
        Assert.False(full.Config.IsSlidingLayer(0));
    }

    [Fact]
    public void Partial_rotary_turns_only_the_first_dimensions_of_each_head()
    {
        const int d = 8, r = 6; const double theta = 10000;
        var rope = new RotaryEmbedding(r, theta, 64, null, CPU);
        var x = Randn([1, 2, 4, d], 11);
        var pos = new[] { 0, 3, 9, 31 };
        var (cos, sin) = rope.For(tensor(pos.Select(p => (long)p).ToArray()).unsqueeze(0));
        var y = RotaryEmbedding.Apply(x, cos, sin).data<float>().ToArray();
        var xs = x.data<float>().ToArray();
        for (int h = 0; h < 2; h++)
            for (int t = 0; t < 4; t++)
            {
                int b0 = (h * 4 + t) * d;
                for (int i = 0; i < r / 2; i++)
                {
                    double angle = pos[t] * Math.Pow(theta, -2.0 * i / r);   // frequencies over the rotated dims only
                    Assert.Equal(xs[b0 + i] * Math.Cos(angle) - xs[b0 + i + r / 2] * Math.Sin(angle), y[b0 + i], 4);
                    Assert.Equal(xs[b0 + i + r / 2] * Math.Cos(angle) + xs[b0 + i] * Math.Sin(angle), y[b0 + i + r / 2], 4);
                }
                for (int i = r; i < d; i++) Assert.Equal(xs[b0 + i], y[b0 + i]);
            }
    }

    [Fact]
    public void Phi3_fused_projections_split_q_k_v_rows_and_gate_before_up()
    {
        // Same weights as separate Llama projections: q = rows [0, 32), k = [32, 48), v = [48, 64); gate = [0, I), up = [I, 2I).
        var phi = ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = "phi3", ["vocab_size"] = 10, ["hidden_size"] = 32, ["num_hidden_layers"] = 1, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["intermediate_size"] = 24,
        });
        var llama = ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = 10, ["hidden_size"] = 32, ["num_hidden_layers"] = 1, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["intermediate_size"] = 24,
        });
        var fused = new Phi3Attention(phi, 0);
        var split = new LlamaAttention(llama, 0);
        var fusedMlp = new Phi3Mlp(phi);
        var splitMlp = new LlamaMlp(llama);
        Randomize(fused, 21); Randomize(fusedMlp, 22);
        using var _ = no_grad();
        var w = fused.qkv_proj.weight;                                        // (64, 32)
        split.q_proj.weight.copy_(w.narrow(0, 0, 32)); split.k_proj.weight.copy_(w.narrow(0, 32, 16)); split.v_proj.weight.copy_(w.narrow(0, 48, 16));
        split.o_proj.weight.copy_(fused.o_proj.weight);
        splitMlp.gate_proj.weight.copy_(fusedMlp.gate_up_proj.weight.narrow(0, 0, 24));
        splitMlp.up_proj.weight.copy_(fusedMlp.gate_up_proj.weight.narrow(0, 24, 24));
        splitMlp.down_proj.weight.copy_(fusedMlp.down_proj.weight);
        var rope = new RotaryEmbedding(8, 10000, 64, null, CPU);
        var (cos, sin) = rope.For(arange(5L).unsqueeze(0));
        var x = Randn([1, 5, 32], 23);
        var ctx = new LayerContext(new AttentionMask(null, true), null, cos, sin);
        var a = fused.Forward(x, ctx); var b = split.Forward(x, ctx);
        Assert.True(a.allclose(b, 1e-6, 1e-6), Diff(a, b));
        var c = fusedMlp.forward(x); var d = splitMlp.forward(x);
        Assert.True(c.allclose(d, 1e-6, 1e-6), Diff(c, d));
    }

    [Fact]
    public void Soft_capping_bounds_attention_scores_and_logits_by_cap_times_tanh()
    {
        var q = Randn([1, 2, 4, 8], 31, 3); var k = Randn([1, 1, 4, 8], 32, 3); var v = Randn([1, 1, 4, 8], 33);
        const double scale = 0.3, cap = 2.0;
        var actual = AttentionKernel.Attend(q, k, v, new AttentionMask(null, true), scale, cap);    // (1, 2, 4, 8)
        var causal = ones(4, 4).tril().logical_not();
        for (int h = 0; h < 2; h++)
        {
            var s = q[0, h].matmul(k[0, 0].t()) * scale;
            var expected = ((s / cap).tanh() * cap).masked_fill(causal, double.NegativeInfinity).softmax(-1).matmul(v[0, 0]);
            Assert.True(actual[0, h].allclose(expected, 1e-6, 1e-6), Diff(actual[0, h], expected));
            var uncapped = s.masked_fill(causal, double.NegativeInfinity).softmax(-1).matmul(v[0, 0]);
            Assert.False(actual[0, h].allclose(uncapped, 1e-3, 1e-3));
        }
        // Final logits: the capped model's logits are cap·tanh(raw / cap) of the same model without the cap.
        using var capped = FamilyTests.Variant("gemma2", o => o["final_logit_softcapping"] = 1.5);
        using var raw = FamilyTests.Variant("gemma2", o => o["final_logit_softcapping"] = null);
        using var _ = no_grad();
        var ids = tensor(new long[] { 4, 8, 15, 16 }).unsqueeze(0);
        using var a = capped.Forward(ids); using var b = raw.Forward(ids);
        var expectedLogits = (b.Logits / 1.5).tanh() * 1.5;
        Assert.True(a.Logits.allclose(expectedLogits, 1e-6, 1e-6), Diff(a.Logits, expectedLogits));
        Assert.True(a.Logits.abs().max().item<float>() < 1.5f && b.Logits.abs().max().item<float>() > 1.5f);
    }
}
