using TorchSharp;
using TorchSharp.Modules;
using Rlft.Policy.Models;
using static TorchSharp.torch;

namespace Rlft.Policy.Encoders;

/// <summary>The body of an encoder: token ids → hidden states at every position; BERT's also pools [CLS].</summary>
internal abstract class EncoderBody : nn.Module
{
    protected EncoderBody(string name) : base(name) { }

    /// <summary>ids (B, T), keyMask (B, 1, 1, T) bool, token types (B, T) or null → hidden (B, T, H).</summary>
    public abstract Tensor Forward(Tensor inputIds, Tensor keyMask, Tensor? tokenTypeIds);

    public abstract EncoderEmbeddings Embeddings { get; }
}

/// <summary>BertEncoder: the stack of layers (keys <c>encoder.layer.N.…</c>).</summary>
internal sealed class BertEncoder : nn.Module
{
    public ModuleList<BertLayer> layer;

    public BertEncoder(EncoderConfig c) : base(nameof(BertEncoder))
    {
        layer = new ModuleList<BertLayer>(Enumerable.Range(0, c.NumLayers).Select(_ => new BertLayer(c)).ToArray());
        RegisterComponents();
    }
}

/// <summary>BertPooler: tanh(dense(hidden at the first token)).</summary>
internal sealed class BertPooler : nn.Module
{
    public Dense dense;   // (H, H)

    public BertPooler(EncoderConfig c) : base(nameof(BertPooler))
    {
        dense = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        RegisterComponents();
    }

    /// <summary>hidden (B, T, H) → pooled (B, H).</summary>
    public Tensor Forward(Tensor hidden) => dense.forward(hidden.select(1, 0)).tanh();
}

/// <summary>
/// BertModel / RobertaModel (the same modules; RoBERTa differs in its positions and special tokens): embeddings,
/// encoder, and the pooler where the head reads it (BERT's sequence classifier).
/// </summary>
internal sealed class BertModel : EncoderBody
{
    public EncoderEmbeddings embeddings;
    public BertEncoder encoder;
    public BertPooler? pooler;

    public BertModel(EncoderConfig c) : base(nameof(BertModel))
    {
        embeddings = new EncoderEmbeddings(c);
        encoder = new BertEncoder(c);
        pooler = c.HasPooler ? new BertPooler(c) : null;
        RegisterComponents();
    }

    public override EncoderEmbeddings Embeddings => embeddings;

    public override Tensor Forward(Tensor inputIds, Tensor keyMask, Tensor? tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        var x = embeddings.Forward(inputIds, tokenTypeIds);   // (B, T, H)
        foreach (var l in encoder.layer) x = l.Forward(x, keyMask);
        return x.MoveToOuterDisposeScope();
    }
}
