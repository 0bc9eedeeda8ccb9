using Rlft.Actors.Compute;
using Rlft.Policy.Memory;
using Rlft.Policy.Models;
using Rlft.Policy.Runtime;
using Rlft.Policy.Training;
using static TorchSharp.torch;

namespace Rlft.Actors.Jobs;

/// <summary>
/// A job's memory estimate (<see cref="MemoryEstimator"/>) from its spec: the model's config.json (a checkpoint's,
/// the one an earlier run of the job wrote into init-model/, or the preset's shape), never its weights, and the token
/// lengths of the stages' data (<see cref="DataLengths"/>: the longest prompt of an online stage, the longest example
/// of an offline one), unless they are given.
/// </summary>
public static class JobMemory
{
    /// <param name="promptTokens">Tokens per prompt for every online stage (null: measured from each stage's data; 64 where it cannot be read).</param>
    /// <param name="sequenceTokens">Tokens per offline example for every offline stage (null: measured; 256 where it cannot be read).</param>
    public static MemoryEstimate Estimate(JobSpec job, int? promptTokens = null, int? sequenceTokens = null) =>
        MemoryEstimator.Estimate(Describe(job, promptTokens, sequenceTokens));

    internal static MemoryJob Describe(JobSpec job, int? promptTokens = null, int? sequenceTokens = null)
    {
        using var lengths = promptTokens is null || sequenceTokens is null ? new DataLengths(job) : null;
        return Describe(job, promptTokens ?? 64, sequenceTokens ?? 256,
            s => promptTokens is null ? lengths!.LongestPrompt(s) : null,
            s => sequenceTokens is null ? lengths!.LongestExample(s) : null,
            s => sequenceTokens is null ? lengths!.LongestEncoderInput(s) : sequenceTokens);
    }

    static MemoryJob Describe(JobSpec job, int promptTokens, int sequenceTokens, Func<StageSpec, int?> prompt, Func<StageSpec, int?> sequence,
        Func<StageSpec, int?> encoderInput) => new()
    {
        Model = ConfigOf(job.Model, Compute.InitModel.Existing(Path.Combine(job.RunDirectory, "init-model"), job.Model, job.Seed)),
        Stages = job.Stages.Select(s => new MemoryStage
        {
            Name = s.Name,
            Kind = s.TrainsEncoder ? MemoryStageKind.Encoder : s.Kind switch
            {
                StageKind.Sft => MemoryStageKind.Sft,
                StageKind.RewardModel => MemoryStageKind.RewardModel,
                StageKind.Ppo => MemoryStageKind.Ppo,
                StageKind.Dpo => MemoryStageKind.Dpo,
                StageKind.Grpo => MemoryStageKind.Grpo,
                StageKind.OnlineDpo => MemoryStageKind.OnlineDpo,
                _ => MemoryStageKind.Distill,
            },
            BatchSize = s.BatchSize,
            SamplesPerPrompt = s.SamplesPerPrompt,
            CompletionTokens = s.Sampling.MaxNewTokens,
            MiniBatches = s.Kind == StageKind.Ppo ? s.Ppo.MiniBatches : 1,
            GradientCheckpointing = s.GradientCheckpointing,
            Optimizer = s.Optimizer.Kind,
            ScoredByRewardModel = s.IsOnline && TorchRewardEngine.UsesRewardModel(s),
            Teacher = s.Kind == StageKind.Distill && s.Teacher is { } t ? ConfigOf(t, null) : null,
            PromptTokens = prompt(s),
            SequenceTokens = s.TrainsEncoder ? Math.Min(s.Encoder!.MaxLength, encoderInput(s) ?? s.Encoder.MaxLength) : sequence(s),
            Encoder = s.TrainsEncoder ? EncoderConfigOf(s.Encoder!) : null,
            EncoderLora = s.Encoder?.Lora,
            EncoderSequencesPerExample = s.Kind == StageKind.RewardModel ? 2 : 1,
        }).ToList(),
        Lora = job.Lora,
        Quantization = job.Model.Quantization,
        LoraFromStart = job.LoraFromStart,
        MixedPrecision = !job.QuantizedBase && MixedPrecisionModel.Wanted(job.Precision, OnCuda(job.Device) ? CUDA : CPU),
        LoraBf16 = job.LoraInBf16(OnCuda(job.Device) ? CUDA : CPU),
        FrozenDtype = job.Model.FrozenDtype,
        MaxPolicyLag = job.MaxPolicyLag,
        RolloutReplicas = job.RolloutWorkers,
        Learners = job.Learners,
        EvalPrompts = job.EvalPrompts,
        PromptTokens = promptTokens,
        SequenceTokens = sequenceTokens,
    };

    /// <summary>Whether the job's device is a GPU (auto: when CUDA is available here), without failing where it is not.</summary>
    internal static bool OnCuda(string device) => device.StartsWith("cuda", StringComparison.Ordinal)
        || (device == "auto" && TorchRuntime.ResolveDevice("auto").type == TorchSharp.DeviceType.CUDA);

    /// <summary>An encoder stage's encoder: its checkpoint's config.json, or the preset's shape (the tokenizer's vocabulary at its default).</summary>
    static Rlft.Policy.Encoders.EncoderConfig EncoderConfigOf(EncoderStageSpec e) => e.Path is { } path
        ? Rlft.Policy.Encoders.EncoderConfig.Load(Path.Combine(path, "config.json"))
        : Rlft.Policy.Encoders.EncoderPresets.Config(e.Arch, e.Preset, e.VocabSize ?? Rlft.Policy.Encoders.EncoderPresets.DefaultVocabSize(e.Preset));

    static ModelConfig ConfigOf(ModelSpec model, string? initDirectory)
    {
        if (model.Path is { } path) return ModelConfig.Load(Path.Combine(path, "config.json"));
        if (initDirectory is not null) return ModelConfig.Load(Path.Combine(initDirectory, "config.json"));
        return ModelPresets.Shape(model.Arch, model.Preset);
    }
}
