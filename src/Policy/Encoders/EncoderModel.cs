using TorchSharp;
using Rlft.Policy.Models;
using static TorchSharp.torch;

namespace Rlft.Policy.Encoders;

/// <summary>
/// What an encoder's forward returns. <see cref="Logits"/> by task: sequence classification (B, L); question
/// answering (B, T, 2) with start logits in [..., 0] and end logits in [..., 1]; token classification (B, T, L);
/// a base model has none (B, 0). <see cref="HiddenStates"/> is the last layer (B, T, H).
/// </summary>
internal sealed record EncoderOutput(Tensor Logits, Tensor HiddenStates) : IDisposable
{
    public void Dispose() { Logits.Dispose(); HiddenStates.Dispose(); }
}

/// <summary>RoBERTa's sequence-classification head: dense → tanh → out_proj on the first token (&lt;s&gt;).</summary>
internal sealed class RobertaClassificationHead : nn.Module
{
    public Dense dense;      // (H, H)
    public Dense out_proj;   // (L, H)

    public RobertaClassificationHead(EncoderConfig c) : base(nameof(RobertaClassificationHead))
    {
        dense = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
        out_proj = new Dense(c.HiddenSize, c.NumLabels, hasBias: true);
        RegisterComponents();
    }

    /// <summary>hidden (B, T, H) → logits (B, L).</summary>
    public Tensor Forward(Tensor hidden) => out_proj.forward(dense.forward(hidden.select(1, 0)).tanh());
}

/// <summary>
/// A BERT-family model with its task head, in transformers' layout: the body under its base-model prefix
/// (<c>bert.</c>, <c>roberta.</c>, <c>distilbert.</c>) and the head's own keys —
/// BERT: pooler → <c>classifier</c>; RoBERTa: <c>classifier.dense</c> → tanh → <c>classifier.out_proj</c> on the first
/// token; DistilBERT: <c>pre_classifier</c> → ReLU → <c>classifier</c> on the first token; question answering:
/// <c>qa_outputs</c> (H → 2) at every token; token classification: <c>classifier</c> at every token.
/// Dropout is not applied (as in RLFT's decoders): training and evaluation compute the same function.
/// </summary>
internal sealed class EncoderModel : nn.Module
{
    public EncoderConfig Config { get; }
    public EncoderBody Body { get; }
    readonly Dense? _classifier, _preClassifier, _qaOutputs;
    readonly RobertaClassificationHead? _robertaHead;

    public EncoderModel(EncoderConfig c) : base(c.ArchitectureName)
    {
        Config = c;
        Body = c.ModelType == "distilbert" ? new DistilBertModel(c) : new BertModel(c);
        register_module(c.Prefix, Body);
        switch (c.Task)
        {
            case EncoderTask.SequenceClassification when c.ModelType == "roberta":
                _robertaHead = new RobertaClassificationHead(c);
                register_module("classifier", _robertaHead);
                break;
            case EncoderTask.SequenceClassification when c.ModelType == "distilbert":
                _preClassifier = new Dense(c.HiddenSize, c.HiddenSize, hasBias: true);
                _classifier = new Dense(c.HiddenSize, c.NumLabels, hasBias: true);
                register_module("pre_classifier", _preClassifier);
                register_module("classifier", _classifier);
                break;
            case EncoderTask.SequenceClassification or EncoderTask.TokenClassification:
                _classifier = new Dense(c.HiddenSize, c.NumLabels, hasBias: true);
                register_module("classifier", _classifier);
                break;
            case EncoderTask.QuestionAnswering:
                _qaOutputs = new Dense(c.HiddenSize, 2, hasBias: true);
                register_module("qa_outputs", _qaOutputs);
                break;
        }
    }

    public Tensor WordEmbeddings => Body.Embeddings.word_embeddings.weight!;
    public Device Device => WordEmbeddings.device;

    /// <summary>
    /// One forward pass. ids (B, T); <paramref name="attentionMask"/> (B, T), 1 for real tokens (null: all real), padding
    /// may sit anywhere; <paramref name="tokenTypeIds"/> (B, T) or null (all 0; DistilBERT ignores them).
    /// </summary>
    public EncoderOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var scope = NewDisposeScope();
        long b = inputIds.shape[0], t = inputIds.shape[1];
        var keyMask = (attentionMask is null ? ones(b, t, dtype: ScalarType.Bool, device: inputIds.device) : attentionMask.to(ScalarType.Bool))
            .view(b, 1, 1, t);                                                                 // (B, 1, 1, T)
        var hidden = Body.Forward(inputIds, keyMask, Config.TypeVocabSize > 0 ? tokenTypeIds : null);   // (B, T, H)
        Tensor logits = Config.Task switch
        {
            EncoderTask.SequenceClassification when _robertaHead is not null => _robertaHead.Forward(hidden),                       // (B, L)
            EncoderTask.SequenceClassification when _preClassifier is not null => _classifier!.forward(_preClassifier.forward(hidden.select(1, 0)).relu()), // (B, L)
            EncoderTask.SequenceClassification => _classifier!.forward(((BertModel)Body).pooler!.Forward(hidden)),              // (B, L)
            EncoderTask.TokenClassification => _classifier!.forward(hidden),                                                    // (B, T, L)
            EncoderTask.QuestionAnswering => _qaOutputs!.forward(hidden),                                                       // (B, T, 2)
            _ => zeros(new long[] { b, 0 }, device: inputIds.device),
        };
        return new EncoderOutput(logits.MoveToOuterDisposeScope(), hidden.MoveToOuterDisposeScope());
    }

    /// <summary>Every projection that can carry a LoRA adapter, by its state-dict name (bert.encoder.layer.0.attention.self.query).</summary>
    public IEnumerable<(string Name, Dense Layer)> DenseLayers() =>
        named_modules().Where(m => m.module is Dense).Select(m => (m.name, (Dense)m.module));

    /// <summary>The state-dict names of the task head (everything outside the base model, plus BERT's pooler).</summary>
    public bool IsHeadParameter(string name) => !name.StartsWith(Config.Prefix + ".", StringComparison.Ordinal) || name.Contains(".pooler.", StringComparison.Ordinal);

    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <summary>
    /// transformers' _init_weights, seeded: normal(0, <paramref name="std"/>) for linear and embedding weights (the
    /// padding rows zeroed), zero biases, unit LayerNorms. <paramref name="only"/> limits it to some parameters (a new head).
    /// </summary>
    public void InitWeights(long seed, double std = 0.02, Func<string, bool>? only = null)
    {
        using var _ = no_grad();
        var gen = new Generator((ulong)seed, Device);
        foreach (var (name, p) in named_parameters())
        {
            if (name.Contains(".lora_") || only?.Invoke(name) == false) continue;
            if (name.EndsWith("bias", StringComparison.Ordinal)) p.zero_();
            else if (p.dim() == 1) p.fill_(1.0);                                   // LayerNorm scales
            else
            {
                p.normal_(0, std, gen);
                if (name.EndsWith("word_embeddings.weight", StringComparison.Ordinal)
                    || Config.ModelType == "roberta" && name.EndsWith("position_embeddings.weight", StringComparison.Ordinal))
                    p[Config.PadTokenId].zero_();
            }
        }
    }

    /// <summary>Moves the model to <paramref name="device"/>.</summary>
    public EncoderModel MoveTo(Device device)
    {
        this.to(device);
        return this;
    }
}
