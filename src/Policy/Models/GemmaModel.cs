using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>
/// Gemma2Model / Gemma3TextModel: embed_tokens scaled by √hidden_size (the scale cast to the embedding dtype, as
/// transformers does), layers.N, final (1 + w) RMSNorm. Full layers rotate with rope_theta (+ rope_scaling);
/// gemma3's sliding layers with rope_local_base_freq.
/// </summary>
internal sealed class GemmaModel : nn.Module
{
    public Embedding embed_tokens;   // (V, H)
    public ModuleList<GemmaDecoderLayer> layers;
    public GemmaRmsNorm norm;
    internal readonly RotaryEmbedding Rotary;
    internal readonly RotaryEmbedding? LocalRotary;
    readonly double embedScale;

    public GemmaModel(ModelConfig c) : base(nameof(GemmaModel))
    {
        embed_tokens = Embeddings.Create(c.VocabSize, c.HiddenSize, device: ParameterDevice.Current);
        layers = new ModuleList<GemmaDecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new GemmaDecoderLayer(c, i)).ToArray());
        norm = new GemmaRmsNorm(c.HiddenSize, c.NormEps);
        Rotary = new RotaryEmbedding(c.RotaryDim, c.RopeTheta, c.MaxPositions, c.RopeScaling, CPU);
        if (c.LocalRopeTheta is double local) LocalRotary = new RotaryEmbedding(c.RotaryDim, local, c.MaxPositions, null, CPU);
        embedScale = Math.Sqrt(c.HiddenSize);
        RegisterComponents();
    }

    public Tensor Forward(Tensor inputIds, Tensor positions, long positionBound, AttentionMask mask, AttentionMask? slidingMask, KvCache? cache, bool checkpoint = false)
    {
        using var scope = NewDisposeScope();
        Rotary.To(inputIds.device);
        var (cos, sin) = Rotary.For(positions, positionBound);                       // (B, 1, T, D) each
        Tensor? localCos = null, localSin = null;
        if (LocalRotary is not null)
        {
            LocalRotary.To(inputIds.device);
            (localCos, localSin) = LocalRotary.For(positions, positionBound);
        }
        var ctx = new LayerContext(mask, cache, cos, sin) { SlidingMask = slidingMask, LocalCos = localCos, LocalSin = localSin };
        var x = embed_tokens.forward(inputIds);                                        // (B, T, H)
        x = x * tensor(embedScale, dtype: x.dtype, device: x.device);
        x = DecoderStack.Run(layers, x, ctx, checkpoint);
        return norm.forward(x).MoveToOuterDisposeScope();                              // (B, T, H)
    }
}

/// <summary>
/// Gemma2ForCausalLM / Gemma3ForCausalLM. Keys match transformers' (<c>model.layers.0.pre_feedforward_layernorm.weight</c>);
/// <c>lm_head</c> exists only when tie_word_embeddings is false (Gemma ties by default). Logits are soft-capped at
/// final_logit_softcapping when it is set (Gemma 2).
/// </summary>
internal sealed class GemmaForCausalLM : CausalLM
{
    public GemmaModel model;
    public Dense? lm_head;   // (V, H)

    public GemmaForCausalLM(ModelConfig c) : base(nameof(GemmaForCausalLM), c)
    {
        model = new GemmaModel(c);
        lm_head = c.TieWordEmbeddings ? null : new Dense(c.HiddenSize, c.VocabSize, hasBias: false);
        RegisterComponents();
    }

    internal override Tensor WordEmbeddings => model.embed_tokens.weight!;

    private protected override Tensor Body(Tensor inputIds, Tensor positions, long positionBound, AttentionMask mask, AttentionMask? slidingMask, KvCache? cache, bool checkpoint) =>
        model.Forward(inputIds, positions, positionBound, mask, slidingMask, cache, checkpoint);

    internal override IEnumerable<Parameter> LmHeadParameters() => lm_head?.parameters() ?? [model.embed_tokens.weight!];

    private protected override Tensor LmHead(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var logits = lm_head is null ? DecodeLinear.Forward(hidden, model.embed_tokens.weight!, null) : lm_head.forward(hidden);   // (B, T, V)
        if (Config.FinalLogitSoftcap is double cap) logits = (logits / cap).tanh() * cap;
        return logits.MoveToOuterDisposeScope();
    }
}
