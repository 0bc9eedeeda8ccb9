using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>A transformer block: hidden states (B, T, H) → (B, T, H), given the per-forward context.</summary>
internal interface IDecoderBlock
{
    Tensor Forward(Tensor x, LayerContext ctx);
}

/// <summary>
/// Runs a model's blocks in order, optionally with gradient checkpointing per block (transformers'
/// <c>gradient_checkpointing_enable()</c>): each block keeps only its input for the backward pass and recomputes its
/// activations there (<see cref="Recompute"/>), trading one more forward of every block for its activation memory.
/// </summary>
internal static class DecoderStack
{
    public static Tensor Run<TBlock>(IEnumerable<TBlock> blocks, Tensor x, LayerContext ctx, bool checkpoint) where TBlock : nn.Module, IDecoderBlock
    {
        foreach (var block in blocks) x = checkpoint ? Checkpointed(block, x, ctx) : block.Forward(x, ctx);   // (B, T, H)
        return x;
    }

    /// <summary>One block under <see cref="Recompute"/>: the context's tensors are saved inputs, so the recomputation reads the same mask and rotary tables.</summary>
    static Tensor Checkpointed<TBlock>(TBlock block, Tensor x, LayerContext ctx) where TBlock : nn.Module, IDecoderBlock
    {
        if (ctx.Cache is not null) throw new InvalidOperationException("gradient checkpointing does not run with a KV cache (decoding needs no backward pass)");
        Tensor?[] inputs = [x, ctx.Mask.Mask, ctx.Cos, ctx.Sin, ctx.SlidingMask?.Mask, ctx.LocalCos, ctx.LocalSin];
        Tensor[] Run(Tensor?[] t)
        {
            var context = new LayerContext(ctx.Mask with { Mask = t[1] }, null, t[2], t[3])
            {
                SlidingMask = ctx.SlidingMask is { } sliding ? sliding with { Mask = t[4] } : null,
                LocalCos = t[5],
                LocalSin = t[6],
            };
            return [block.Forward(t[0]!, context)];
        }
        bool random = block.modules().OfType<Dense>().Any(d => d.DrawsRandom);
        return Recompute.Apply(Run, inputs, block.parameters().ToList(), preserveRng: random, trimHeap: true)[0];
    }
}
