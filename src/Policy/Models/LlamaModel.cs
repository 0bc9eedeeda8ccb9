using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>LlamaModel (also Mistral's, Qwen2's, Qwen3's and Phi-3's): embed_tokens, layers.N, final RMSNorm.</summary>
internal sealed class LlamaModel : nn.Module
{
    public Embedding embed_tokens;   // (V, H)
    public ModuleList<LlamaDecoderLayer> layers;
    public RmsNorm norm;
    internal readonly RotaryEmbedding Rotary;
    readonly int? longRopeFrom;

    public LlamaModel(ModelConfig c) : base(nameof(LlamaModel))
    {
        embed_tokens = Embeddings.Create(c.VocabSize, c.HiddenSize, device: ParameterDevice.Current);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new LlamaDecoderLayer(c, i)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.NormEps);
        Rotary = new RotaryEmbedding(c.RotaryDim, c.RopeTheta, c.MaxPositions, c.RopeScaling, CPU);
        longRopeFrom = c.RopeScaling?.Type == "longrope" ? c.RopeScaling.OriginalMaxPositions : null;
        RegisterComponents();
    }

    public Tensor Forward(Tensor inputIds, Tensor positions, long positionBound, AttentionMask mask, KvCache? cache, bool checkpoint = false)
    {
        using var scope = NewDisposeScope();
        Rotary.To(inputIds.device);
        if (longRopeFrom is int from && cache is not null)
        {
            // transformers rebuilds its cache when longrope switches to the long factors; a cache here cannot follow.
            bool isLong = Rotary.UsesLongFactors(positions);
            if (cache.LongRope is bool was && was != isLong)
                throw new InvalidOperationException($"longrope: the sequence reached original_max_position_embeddings ({from}) during cached decoding, which changes every rotary angle; generate without the KV cache or stay below {from} tokens");
            cache.LongRope = isLong;
        }
        var (cos, sin) = Rotary.For(positions, positionBound);                     // (B, 1, T, R) each
        var ctx = new LayerContext(mask, cache, cos, sin);
        var x = embed_tokens.forward(inputIds);                      // (B, T, H)
        x = DecoderStack.Run(layers, x, ctx, checkpoint);
        return norm.forward(x).MoveToOuterDisposeScope();            // (B, T, H)
    }
}

/// <summary>
/// LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM / Phi3ForCausalLM. Keys match
/// transformers' (<c>model.layers.0.self_attn.q_proj.weight</c>, phi3's <c>self_attn.qkv_proj</c>); <c>lm_head</c>
/// exists unless tie_word_embeddings.
/// </summary>
internal sealed class LlamaForCausalLM : CausalLM
{
    public LlamaModel model;
    public Dense? lm_head;   // (V, H)

    public LlamaForCausalLM(ModelConfig c) : base(nameof(LlamaForCausalLM), c)
    {
        model = new LlamaModel(c);
        lm_head = c.TieWordEmbeddings ? null : new Dense(c.HiddenSize, c.VocabSize, hasBias: false);
        RegisterComponents();
    }

    internal override Tensor WordEmbeddings => model.embed_tokens.weight!;

    private protected override Tensor Body(Tensor inputIds, Tensor positions, long positionBound, AttentionMask mask, AttentionMask? slidingMask, KvCache? cache, bool checkpoint) =>
        model.Forward(inputIds, positions, positionBound, mask, cache, checkpoint);

    private protected override Tensor LmHead(Tensor hidden) =>
        lm_head is null ? DecodeLinear.Forward(hidden, model.embed_tokens.weight!, null) : lm_head.forward(hidden);

    internal override IEnumerable<Parameter> LmHeadParameters() => lm_head?.parameters() ?? [model.embed_tokens.weight!];
}
