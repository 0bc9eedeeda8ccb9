using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rlft.Policy.Models;

/// <summary>GPT2Model: token (wte) and learned position (wpe) embeddings, blocks h.N, final ln_f.</summary>
internal sealed class Gpt2Transformer : nn.Module
{
    public Embedding wte;    // (V, C)
    public Embedding wpe;    // (P, C)
    public ModuleList<Gpt2Block> h;
    public LayerNorm ln_f;

    public Gpt2Transformer(ModelConfig c) : base(nameof(Gpt2Transformer))
    {
        wte = Embeddings.Create(c.VocabSize, c.HiddenSize, device: ParameterDevice.Current);
        wpe = Embeddings.Create(c.MaxPositions, c.HiddenSize, device: ParameterDevice.Current);
        h = new ModuleList<Gpt2Block>(Enumerable.Range(0, c.NumLayers).Select(i => new Gpt2Block(c, i)).ToArray());
        ln_f = nn.LayerNorm(c.HiddenSize, c.NormEps, device: ParameterDevice.Current);
        RegisterComponents();
    }

    public Tensor Forward(Tensor inputIds, Tensor positions, LayerContext ctx, bool checkpoint = false)
    {
        using var scope = NewDisposeScope();
        var x = wte.forward(inputIds) + wpe.forward(positions);   // (B, T, C)
        x = DecoderStack.Run(h, x, ctx, checkpoint);
        return ln_f.forward(x).MoveToOuterDisposeScope();          // (B, T, C)
    }
}

/// <summary>
/// GPT2LMHeadModel. State-dict keys match transformers' (<c>transformer.h.0.attn.c_attn.weight</c>); the LM head is
/// the transposed token embedding when tied (GPT-2's default), a separate <c>lm_head</c> otherwise. Dropout is not
/// applied: RL fine-tuning runs with dropout off so that sampled and recomputed log-probs agree.
/// </summary>
internal sealed class Gpt2LMHeadModel : CausalLM
{
    public Gpt2Transformer transformer;
    public Dense? lm_head;   // (V, C), only when tie_word_embeddings is false

    public Gpt2LMHeadModel(ModelConfig c) : base(nameof(Gpt2LMHeadModel), c)
    {
        transformer = new Gpt2Transformer(c);
        lm_head = c.TieWordEmbeddings ? null : new Dense(c.HiddenSize, c.VocabSize, hasBias: false);
        RegisterComponents();
    }

    internal override Tensor WordEmbeddings => transformer.wte.weight!;

    private protected override Tensor Body(Tensor inputIds, Tensor positions, long positionBound, AttentionMask mask, AttentionMask? slidingMask, KvCache? cache, bool checkpoint) =>
        transformer.Forward(inputIds, positions, new LayerContext(mask, cache, null, null), checkpoint);

    private protected override Tensor LmHead(Tensor hidden) =>
        lm_head is null ? DecodeLinear.Forward(hidden, transformer.wte.weight!, null) : lm_head.forward(hidden);

    internal override IEnumerable<Parameter> LmHeadParameters() => lm_head?.parameters() ?? [transformer.wte.weight!];
}
