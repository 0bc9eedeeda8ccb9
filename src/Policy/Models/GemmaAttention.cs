using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Gemma 2/3 attention: q/k/v/o projections, Gemma-3's per-head (1 + w) RMSNorm on queries and keys before RoPE,
/// scores scaled by query_pre_attn_scalar^-½ and (Gemma 2) soft-capped at attn_logit_softcapping. A sliding layer
/// uses the sliding-window mask and the local RoPE table; a full layer the causal mask and the global table.
/// </summary>
internal sealed class GemmaAttention : DecoderAttention
{
    public Dense q_proj;   // (nh·D, H)
    public Dense k_proj;   // (kv·D, H)
    public Dense v_proj;   // (kv·D, H)
    public Dense o_proj;   // (H, nh·D)
    public GemmaRmsNorm? q_norm;   // (D,), gemma3
    public GemmaRmsNorm? k_norm;   // (D,), gemma3
    readonly int heads, kvHeads, headDim, layer;
    readonly double scale;
    readonly double? softcap;
    public bool IsSliding { get; }

    public GemmaAttention(ModelConfig c, int layer) : base(nameof(GemmaAttention))
    {
        heads = c.NumHeads; kvHeads = c.NumKeyValueHeads; headDim = c.HeadDim; this.layer = layer;
        scale = Math.Pow(c.QueryPreAttnScalar ?? headDim, -0.5);
        softcap = c.AttnLogitSoftcap;
        IsSliding = c.IsSlidingLayer(layer);
        q_proj = new Dense(c.HiddenSize, (long)heads * headDim, c.AttentionBias);
        k_proj = new Dense(c.HiddenSize, (long)kvHeads * headDim, c.AttentionBias);
        v_proj = new Dense(c.HiddenSize, (long)kvHeads * headDim, c.AttentionBias);
        o_proj = new Dense((long)heads * headDim, c.HiddenSize, c.AttentionBias);
        if (c.QkNorm) { q_norm = new GemmaRmsNorm(headDim, c.NormEps); k_norm = new GemmaRmsNorm(headDim, c.NormEps); }
        RegisterComponents();
    }

    public override Tensor Forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.forward(x).view(b, t, heads, headDim).transpose(1, 2);     // (B, nh, T, D)
        var k = k_proj.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2);   // (B, kv, T, D)
        var v = v_proj.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2);   // (B, kv, T, D)
        if (q_norm is not null) { q = q_norm.forward(q); k = k_norm!.forward(k); }
        var (cos, sin) = IsSliding ? (ctx.LocalCos ?? ctx.Cos!, ctx.LocalSin ?? ctx.Sin!) : (ctx.Cos!, ctx.Sin!);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (ctx.Cache is not null) (k, v) = ctx.Cache.Append(layer, k, v);       // (B, kv, S, D)
        var mask = IsSliding ? ctx.SlidingMask ?? ctx.Mask : ctx.Mask;
        // SDPA's implicit 1/√D is used as is when it equals the configured scale and nothing is capped.
        bool plain = softcap is null && Math.Abs(scale * Math.Sqrt(headDim) - 1) < 1e-12;
        var y = AttentionKernel.Attend(q, k, v, mask, plain ? null : scale, softcap); // (B, nh, T, D)
        y = y.transpose(1, 2).reshape(b, t, (long)heads * headDim);               // (B, T, nh·D)
        return o_proj.forward(y).MoveToOuterDisposeScope();                        // (B, T, H)
    }
}
