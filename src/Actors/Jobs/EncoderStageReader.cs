using Rlft.Actors.Configuration;
using Rlft.Policy.Encoders;
using Rlft.Policy.Lora;

namespace Rlft.Actors.Jobs;

/// <summary>
/// Reads an encoder stage's sections (<c>encoder</c>, <c>classify</c>, <c>qa</c>, <c>lora</c>, <c>reward-model.text</c>)
/// into an <see cref="EncoderStageSpec"/>, and refuses them on stages they do not apply to. Keys are relative to the
/// stage; the job reader prefixes the stage's path.
/// </summary>
internal static class EncoderStageReader
{
    static readonly string[] EncoderKeys = ["path", "arch", "preset", "vocab-size", "max-length"];
    static readonly string[] ClassifyKeys = ["labels", "problem-type"];
    static readonly string[] QaKeys = ["doc-stride", "max-query-length", "max-answer-length"];
    static readonly string[] LoraKeys = ["rank", "alpha", "dropout", "target-modules"];

    /// <summary>The stage sections this reader owns (the job reader lists them among a stage's keys).</summary>
    public static readonly string[] StageKeys = ["encoder", "classify", "qa", "lora"];

    /// <summary>True for the stages that train an encoder: classify, qa, and a reward-model stage with an encoder section.</summary>
    public static bool IsEncoderStage(RlftConfig s, StageKind kind) => kind is StageKind.Classify or StageKind.Qa || kind == StageKind.RewardModel && s.Has("encoder");

    /// <summary>The stage's encoder settings, or null for a stage that trains no encoder (which must then carry none of them).</summary>
    public static EncoderStageSpec? Read(RlftConfig s, StageKind kind, string kindName)
    {
        if (!IsEncoderStage(s, kind))
        {
            if (StageKeys.FirstOrDefault(s.Has) is { } stray)
                throw new ConfigException(stray == "lora"
                    ? $"lora: a stage's lora section adapts the encoder of classify, qa and encoder reward-model stages; the policy's LoRA is {JobSpecReader.Root}.lora"
                    : $"{stray}: applies to encoder stages (classify, qa, reward-model with an encoder section), not to a {kindName} stage");
            if (s.Has("reward-model.text")) throw new ConfigException("reward-model.text: applies to an encoder reward model (a reward-model stage with an encoder section)");
            return null;
        }
        s.RejectUnknownKeys("encoder", EncoderKeys);
        s.RejectUnknownKeys("classify", ClassifyKeys);
        s.RejectUnknownKeys("qa", QaKeys);
        s.RejectUnknownKeys("lora", LoraKeys);
        if (kind != StageKind.Classify && s.Has("classify")) throw new ConfigException($"classify: applies to classify stages, not to a {kindName} stage");
        if (kind != StageKind.Qa && s.Has("qa")) throw new ConfigException($"qa: applies to qa stages, not to a {kindName} stage");
        string? path = s.Has("encoder.path") ? s.GetString("encoder.path") : null;
        if (path is { Length: 0 }) throw new ConfigException("encoder.path: must not be empty");
        if (path is not null && new[] { "arch", "preset", "vocab-size" }.FirstOrDefault(k => s.Has($"encoder.{k}")) is { } made)
            throw new ConfigException($"encoder.{made}: describes a fresh encoder, and encoder.path names a checkpoint (it has its own)");
        int maxLength = s.GetInt("encoder.max-length", 512, min: 8, max: 8192);
        var problem = s.GetEnum("classify.problem-type", ["single-label", "multi-label", "regression"], "single-label") switch
        {
            "multi-label" => ProblemType.MultiLabel,
            "regression" => ProblemType.Regression,
            _ => ProblemType.SingleLabel,
        };
        IReadOnlyList<string>? labels = s.Has("classify.labels") ? s.GetStringList("classify.labels") : null;
        if (labels is not null)
        {
            if (problem == ProblemType.Regression) throw new ConfigException("classify.labels: a regression head has one output and no label names");
            if (labels.Count < (problem == ProblemType.MultiLabel ? 1 : 2)) throw new ConfigException($"classify.labels: a {(problem == ProblemType.MultiLabel ? "multi-label head needs at least one label" : "single-label head needs at least two labels")}");
            if (labels.FirstOrDefault(l => l.Length == 0 || l.Contains(',')) is { } bad) throw new ConfigException($"classify.labels: '{bad}' is not a label name (non-empty, no comma)");
            if (labels.Distinct().Count() != labels.Count) throw new ConfigException("classify.labels: a label is named twice");
        }
        var qa = new QaOptions();
        return new EncoderStageSpec
        {
            Path = path,
            Arch = s.GetEnum("encoder.arch", EncoderPresets.Architectures, "bert"),
            Preset = s.GetEnum("encoder.preset", EncoderPresets.Presets, "tiny"),
            VocabSize = s.Has("encoder.vocab-size") ? s.GetInt("encoder.vocab-size", min: 16, max: 1_000_000) : null,
            MaxLength = maxLength,
            Labels = labels,
            Problem = problem,
            Qa = new QaOptions
            {
                MaxLength = maxLength,
                Stride = s.GetInt("qa.doc-stride", qa.Stride, min: 0, max: 8192),
                MaxQueryLength = s.GetInt("qa.max-query-length", qa.MaxQueryLength, min: 1, max: 8192),
                MaxAnswerLength = s.GetInt("qa.max-answer-length", qa.MaxAnswerLength, min: 1, max: 8192),
            },
            Lora = s.Has("lora") ? ReadLora(s) : null,
            WithPrompt = s.GetEnum("reward-model.text", ["prompt-and-completion", "completion"], "prompt-and-completion") == "prompt-and-completion",
        };
    }

    static LoraConfig ReadLora(RlftConfig s)
    {
        var d = new LoraConfig();
        var config = new LoraConfig
        {
            Rank = s.GetInt("lora.rank", d.Rank, min: 1, max: 4096),
            Alpha = s.GetDouble("lora.alpha", d.Alpha, min: 1e-6),
            Dropout = s.GetDouble("lora.dropout", 0, min: 0, max: 0.99),
            TargetModules = s.GetStringList("lora.target-modules", EncoderStageSpec.DefaultLoraTargets),
        };
        if (config.TargetModules.Count == 0) throw new ConfigException("lora.target-modules: at least one module name is needed");
        return config;
    }
}
