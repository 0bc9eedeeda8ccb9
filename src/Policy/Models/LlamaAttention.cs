using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Llama/Mistral/Qwen2/Qwen3 attention: separate q/k/v/o projections, rotary embeddings on q and k, and grouped-query
/// attention where each of the KV heads serves NumHeads / KV consecutive query heads (transformers' repeat_kv).
/// Qwen3 adds an RMSNorm over head_dim on each query and key head (q_norm, k_norm), applied before RoPE.
/// </summary>
internal sealed class LlamaAttention : DecoderAttention
{
    public Dense q_proj;   // (nh·D, H)
    public Dense k_proj;   // (kv·D, H)
    public Dense v_proj;   // (kv·D, H)
    public Dense o_proj;   // (H, nh·D)
    public RmsNorm? q_norm;   // (D,), qwen3
    public RmsNorm? k_norm;   // (D,), qwen3
    readonly int heads, kvHeads, headDim, layer;

    public LlamaAttention(ModelConfig c, int layer) : base(nameof(LlamaAttention))
    {
        heads = c.NumHeads; kvHeads = c.NumKeyValueHeads; headDim = c.HeadDim; this.layer = layer;
        q_proj = new Dense(c.HiddenSize, (long)heads * headDim, c.AttentionBias);
        k_proj = new Dense(c.HiddenSize, (long)kvHeads * headDim, c.AttentionBias);
        v_proj = new Dense(c.HiddenSize, (long)kvHeads * headDim, c.AttentionBias);
        o_proj = new Dense((long)heads * headDim, c.HiddenSize, c.OutputProjectionBias);
        if (c.QkNorm) { q_norm = new RmsNorm(headDim, c.NormEps); k_norm = new RmsNorm(headDim, c.NormEps); }
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
        q = RotaryEmbedding.Apply(q, ctx.Cos!, ctx.Sin!);
        k = RotaryEmbedding.Apply(k, ctx.Cos!, ctx.Sin!);
        if (ctx.Cache is not null) (k, v) = ctx.Cache.Append(layer, k, v);       // (B, kv, S, D)
        var y = AttentionKernel.Attend(q, k, v, ctx.Mask);                         // (B, nh, T, D)
        y = y.transpose(1, 2).reshape(b, t, (long)heads * headDim);               // (B, T, nh·D)
        return o_proj.forward(y).MoveToOuterDisposeScope();                        // (B, T, H)
    }

    /// <summary>(B, kv, S, D) → (B, kv·n, S, D); see <see cref="AttentionKernel.RepeatKv"/>.</summary>
    public static Tensor RepeatKv(Tensor x, int n) => AttentionKernel.RepeatKv(x, n);
}
