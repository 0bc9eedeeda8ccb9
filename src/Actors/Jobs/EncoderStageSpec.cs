using Rlft.Actors.Configuration;
using Rlft.Policy.Encoders;
using Rlft.Policy.Lora;

namespace Rlft.Actors.Jobs;

/// <summary>
/// The encoder an encoder stage trains (<c>classify</c>, <c>qa</c>, or <c>reward-model</c> with an <c>encoder</c> section),
/// and its task settings. The encoder is the stage's own model, beside the job's policy: <c>encoder { path = DIR }</c>
/// starts from a BERT, RoBERTa or DistilBERT checkpoint (its head kept when it is the task's, else a new one), and
/// <c>encoder { arch = bert | roberta | distilbert, preset = tiny | small }</c> from random weights, with a tokenizer
/// trained on the stage's training texts. The trained model is written to <c>encoders/STAGE-NAME/</c> in the run
/// directory, in Hugging Face layout, where <c>rlft classify</c> and the <c>classifier</c> reward source
/// (<c>model = "stage:STAGE-NAME"</c>) read it.
/// </summary>
public sealed record EncoderStageSpec
{
    /// <summary><c>encoder.path</c>: the checkpoint to start from; null: a fresh model of <see cref="Arch"/> and <see cref="Preset"/>.</summary>
    public string? Path { get; init; }
    /// <summary><c>encoder.arch</c>: bert (default), roberta or distilbert.</summary>
    public string Arch { get; init; } = "bert";
    /// <summary><c>encoder.preset</c>: tiny (default: 2 layers × d64, 128 positions) or small (4 × d256, 512).</summary>
    public string Preset { get; init; } = "tiny";
    /// <summary><c>encoder.vocab-size</c>: the tokenizer trained for a fresh model (default: the preset's, 512 or 2048).</summary>
    public int? VocabSize { get; init; }
    /// <summary><c>encoder.max-length</c>: tokens per input (a QA window), longer inputs truncated. Default 512; the model's positions cap it.</summary>
    public int MaxLength { get; init; } = 512;
    /// <summary><c>classify.labels</c>: the label names in id order; null: the data's labels, sorted (none for regression).</summary>
    public IReadOnlyList<string>? Labels { get; init; }
    /// <summary><c>classify.problem-type</c>: single-label (default), multi-label or regression (transformers' problem_type).</summary>
    public ProblemType Problem { get; init; } = ProblemType.SingleLabel;
    /// <summary><c>qa { doc-stride, max-query-length, max-answer-length }</c>; the window is <see cref="MaxLength"/>.</summary>
    public QaOptions Qa { get; init; } = new();
    /// <summary>
    /// <c>lora { rank, alpha, dropout, target-modules }</c>: adapters on the body's projections, the head trained in full
    /// (<see cref="LoraAdapters.Apply(EncoderModel, LoraConfig, long)"/>); the stage writes the merged model and the adapters.
    /// </summary>
    public LoraConfig? Lora { get; init; }
    /// <summary>
    /// <c>reward-model.text</c> of an encoder reward model: prompt-and-completion (default: the prompt as text, the completion
    /// as text_pair) or completion (the completion alone). The classifier reward source's <c>text</c> must match it.
    /// </summary>
    public bool WithPrompt { get; init; } = true;

    /// <summary>The attention projections of every encoder family: BERT and RoBERTa's query/key/value, DistilBERT's q_lin/k_lin/v_lin.</summary>
    internal static readonly IReadOnlyList<string> DefaultLoraTargets = ["query", "key", "value", "q_lin", "k_lin", "v_lin"];

    /// <summary>Where an encoder stage writes its model: <c>RUN/encoders/STAGE-NAME</c>.</summary>
    internal static string OutputDirectory(JobSpec job, StageSpec stage) => System.IO.Path.Combine(job.RunDirectory, "encoders", stage.Name);

    /// <summary>The prefix by which a classifier reward source names an encoder stage's model: <c>model = "stage:NAME"</c>.</summary>
    internal const string StagePrefix = "stage:";

    /// <summary>
    /// The encoder stage a <c>stage:NAME</c> model reference names (by its name, or its index), or null when
    /// <paramref name="model"/> is a directory; a reference to no stage, or to a stage that is not an encoder stage,
    /// is a <see cref="ConfigException"/> saying so.
    /// </summary>
    internal static StageSpec? Referenced(JobSpec job, string model)
    {
        if (!model.StartsWith(StagePrefix, StringComparison.Ordinal)) return null;
        string name = model[StagePrefix.Length..];
        var stage = job.Stages.FirstOrDefault(s => s.Name == name)
            ?? (int.TryParse(name, out int i) && i >= 0 && i < job.Stages.Count ? job.Stages[i] : null)
            ?? throw new ConfigException($"'{model}' names no stage of this job (stages: {string.Join(", ", job.Stages.Select(s => s.Name))})");
        if (stage.Encoder is null || stage.Kind == StageKind.Qa)
            throw new ConfigException($"'{model}' is stage {stage.Index} ({stage.Kind}), which trains no sequence classifier (classify, or reward-model with an encoder)");
        return stage;
    }

    /// <summary>The model directory <paramref name="model"/> means: an encoder stage's output for <c>stage:NAME</c>, else itself.</summary>
    internal static string Resolve(JobSpec job, string model) => Referenced(job, model) is { } stage ? OutputDirectory(job, stage) : model;
}
