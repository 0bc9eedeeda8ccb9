using TorchSharp;
using TorchSharp.Modules;
using Rlft.Policy.Models;
using static TorchSharp.torch;

namespace Rlft.Policy.Encoders;

/// <summary>DistilBERT's MultiHeadSelfAttention: q_lin, k_lin, v_lin, out_lin.</summary>
internal sealed class DistilBertAttention : nn.Module
{
    public Dense q_lin, k_lin, v_lin, out_lin;   // (H, H) each, with bias
    readonly int heads, headDim;

    public DistilBertAttention(EncoderConfig c) : base(nameof(DistilBertAttention))
    {
        heads = c.NumHeads; headDim = c.HeadDim;
        q_lin = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        k_lin = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        v_lin = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        out_lin = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        RegisterComponents();
    }

    /// <summary>x (B, T, H), keyMask (B, 1, 1, T) → (B, T, H).</summary>
    public Tensor Forward(Tensor x, Tensor keyMask)
    {
        using var scope = NewDisposeScope();
        return out_lin.forward(EncoderAttention.Attend(x, q_lin, k_lin, v_lin, keyMask, heads, headDim)).MoveToOuterDisposeScope();
    }
}

/// <summary>DistilBERT's FFN: lin1, activation, lin2.</summary>
internal sealed class DistilBertFfn : nn.Module
{
    public Dense lin1;   // (I, H)
    public Dense lin2;   // (H, I)
    readonly EncoderActivation act;

    public DistilBertFfn(EncoderConfig c) : base(nameof(DistilBertFfn))
    {
        act = c.Activation;
        lin1 = new Dense(c.HiddenSize, c.IntermediateSize, hasBias: true);
        lin2 = new Dense(c.IntermediateSize, c.HiddenSize, hasBias: true);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => lin2.forward(EncoderAttention.Activate(lin1.forward(x), act));
}

/// <summary>DistilBERT's TransformerBlock (post-LayerNorm, ε 1e-12): LN(x + attn(x)), then LN(· + ffn(·)).</summary>
internal sealed class DistilBertBlock : nn.Module
{
    public DistilBertAttention attention;
    public LayerNorm sa_layer_norm;
    public DistilBertFfn ffn;
    public LayerNorm output_layer_norm;

    public DistilBertBlock(EncoderConfig c) : base(nameof(DistilBertBlock))
    {
        attention = new DistilBertAttention(c);
        sa_layer_norm = nn.LayerNorm(c.HiddenSize, c.NormEps, device: ParameterDevice.Current);
        ffn = new DistilBertFfn(c);
        output_layer_norm = nn.LayerNorm(c.HiddenSize, c.NormEps, device: ParameterDevice.Current);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor keyMask)
    {
        using var scope = NewDisposeScope();
        var sa = sa_layer_norm.forward(attention.Forward(x, keyMask) + x);          // (B, T, H)
        return output_layer_norm.forward(ffn.Forward(sa) + sa).MoveToOuterDisposeScope();
    }
}

/// <summary>DistilBERT's Transformer: the stack (keys <c>transformer.layer.N.…</c>).</summary>
internal sealed class DistilBertTransformer : nn.Module
{
    public ModuleList<DistilBertBlock> layer;

    public DistilBertTransformer(EncoderConfig c) : base(nameof(DistilBertTransformer))
    {
        layer = new ModuleList<DistilBertBlock>(Enumerable.Range(0, c.NumLayers).Select(_ => new DistilBertBlock(c)).ToArray());
        RegisterComponents();
    }
}

/// <summary>DistilBertModel: embeddings (no token types) and the transformer; no pooler.</summary>
internal sealed class DistilBertModel : EncoderBody
{
    public EncoderEmbeddings embeddings;
    public DistilBertTransformer transformer;

    public DistilBertModel(EncoderConfig c) : base(nameof(DistilBertModel))
    {
        embeddings = new EncoderEmbeddings(c);
        transformer = new DistilBertTransformer(c);
        RegisterComponents();
    }

    public override EncoderEmbeddings Embeddings => embeddings;

    public override Tensor Forward(Tensor inputIds, Tensor keyMask, Tensor? tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        var x = embeddings.Forward(inputIds, null);   // (B, T, H): DistilBERT has no token types
        foreach (var l in transformer.layer) x = l.Forward(x, keyMask);
        return x.MoveToOuterDisposeScope();
    }
}
