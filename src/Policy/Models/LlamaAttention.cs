using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>
/// Llama/Mistral/Qwen2 attention: separate q/k/v/o projections, rotary embeddings on q and k, and grouped-query
/// attention where each of the KV heads serves NumHeads / KV consecutive query heads (transformers' repeat_kv).
/// </summary>
public sealed class LlamaAttention : nn.Module
{
    public Dense q_proj;   // (nh·D, H)
    public Dense k_proj;   // (kv·D, H)
    public Dense v_proj;   // (kv·D, H)
    public Dense o_proj;   // (H, nh·D)
    readonly int heads, kvHeads, headDim, layer;

    public LlamaAttention(ModelConfig c, int layer) : base(nameof(LlamaAttention))
    {
        heads = c.NumHeads; kvHeads = c.NumKeyValueHeads; headDim = c.HeadDim; this.layer = layer;
        q_proj = new Dense(c.HiddenSize, (long)heads * headDim, c.AttentionBias);
        k_proj = new Dense(c.HiddenSize, (long)kvHeads * headDim, c.AttentionBias);
        v_proj = new Dense(c.HiddenSize, (long)kvHeads * headDim, c.AttentionBias);
        o_proj = new Dense((long)heads * headDim, c.HiddenSize, c.OutputProjectionBias);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.forward(x).view(b, t, heads, headDim).transpose(1, 2);     // (B, nh, T, D)
        var k = k_proj.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2);   // (B, kv, T, D)
        var v = v_proj.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2);   // (B, kv, T, D)
        q = RotaryEmbedding.Apply(q, ctx.Cos!, ctx.Sin!);
        k = RotaryEmbedding.Apply(k, ctx.Cos!, ctx.Sin!);
        if (ctx.Cache is not null) (k, v) = ctx.Cache.Append(layer, k, v);       // (B, kv, S, D)
        k = RepeatKv(k, heads / kvHeads);                                          // (B, nh, S, D)
        v = RepeatKv(v, heads / kvHeads);
        var y = F.scaled_dot_product_attention(q, k, v, ctx.Mask.Mask, is_casual: ctx.Mask.Causal); // (B, nh, T, D)
        y = y.transpose(1, 2).reshape(b, t, (long)heads * headDim);               // (B, T, nh·D)
        return o_proj.forward(y).MoveToOuterDisposeScope();                        // (B, T, H)
    }

    /// <summary>(B, kv, S, D) → (B, kv·n, S, D), each KV head repeated n times in place (head i uses kv head i / n).</summary>
    public static Tensor RepeatKv(Tensor x, int n)
    {
        if (n == 1) return x;
        long b = x.shape[0], kv = x.shape[1], s = x.shape[2], d = x.shape[3];
        return x.unsqueeze(2).expand(b, kv, n, s, d).reshape(b, kv * n, s, d);
    }
}
