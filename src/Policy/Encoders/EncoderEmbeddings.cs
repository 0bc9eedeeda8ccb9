using TorchSharp;
using TorchSharp.Modules;
using Rlft.Policy.Models;
using static TorchSharp.torch;

namespace Rlft.Policy.Encoders;

/// <summary>
/// BertEmbeddings / RobertaEmbeddings / DistilBERT's Embeddings: word + absolute position (+ token type) embeddings,
/// then LayerNorm. Positions count from 0 (BERT, DistilBERT) or, for RoBERTa, from padding_idx + 1 over the tokens
/// that are not padding (transformers' create_position_ids_from_input_ids: padding_idx + cumsum(ids ≠ pad) on real
/// tokens, padding_idx on pad tokens). DistilBERT has no token-type table.
/// </summary>
internal sealed class EncoderEmbeddings : nn.Module
{
    public Embedding word_embeddings;          // (V, H)
    public Embedding position_embeddings;      // (P, H)
    public Embedding? token_type_embeddings;   // (types, H), absent in DistilBERT
    public LayerNorm LayerNorm;
    readonly bool roberta;
    readonly long pad;

    public EncoderEmbeddings(EncoderConfig c) : base(nameof(EncoderEmbeddings))
    {
        var device = ParameterDevice.Current;
        roberta = c.ModelType == "roberta";
        pad = c.PadTokenId;
        word_embeddings = Embeddings.Create(c.VocabSize, c.HiddenSize, c.PadTokenId, device);
        position_embeddings = roberta
            ? Embeddings.Create(c.MaxPositions, c.HiddenSize, c.PadTokenId, device)
            : Embeddings.Create(c.MaxPositions, c.HiddenSize, device: device);
        token_type_embeddings = c.TypeVocabSize > 0 ? Embeddings.Create(c.TypeVocabSize, c.HiddenSize, device: device) : null;
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.NormEps, device: device);
        RegisterComponents();
    }

    /// <summary>ids (B, T), token types (B, T) or null (all 0; ignored where there is no table) → (B, T, H).</summary>
    public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        var x = word_embeddings.forward(inputIds) + position_embeddings.forward(Positions(inputIds));    // (B, T, H)
        if (token_type_embeddings is not null)
            x = x + token_type_embeddings.forward(tokenTypeIds ?? zeros_like(inputIds));                  // (B, T, H)
        return LayerNorm.forward(x).MoveToOuterDisposeScope();
    }

    /// <summary>(B, T) position ids as transformers computes them for this family.</summary>
    public Tensor Positions(Tensor inputIds)
    {
        long b = inputIds.shape[0], t = inputIds.shape[1];
        if (!roberta) return arange(t, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0).expand(b, t);
        var real = inputIds.ne(pad).to(ScalarType.Int64);                                                 // (B, T)
        return real.cumsum(1) * real + pad;                                                                // (B, T)
    }
}
