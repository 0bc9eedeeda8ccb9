using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using static TorchSharp.torch;

namespace Rlft.Policy.Memory;

/// <summary>What a stage trains, as far as memory is concerned.</summary>
internal enum MemoryStageKind { Sft, RewardModel, Ppo, Dpo, Grpo, Distill, OnlineDpo, Encoder }

/// <summary>
/// One stage of a job as the estimate sees it: how many sequences of how many tokens one training step holds
/// activations for, and which extra models it keeps.
/// </summary>
internal sealed record MemoryStage
{
    public required string Name { get; init; }
    public required MemoryStageKind Kind { get; init; }
    /// <summary>Completions (online stages: batch-size ÷ samples-per-prompt prompts, each sampled that many times), examples or pairs (offline stages) per step.</summary>
    public required int BatchSize { get; init; }
    /// <summary>Online stages: completions per prompt (GRPO's group, 2 for online DPO, else 1).</summary>
    public int SamplesPerPrompt { get; init; } = 1;
    /// <summary>Online stages: the completions a step generates and trains on, as the prompt source draws them (at least one prompt's group).</summary>
    public long Completions => (long)Math.Max(1, BatchSize / SamplesPerPrompt) * SamplesPerPrompt;
    /// <summary>Online stages: <c>sampling.max-new-tokens</c>.</summary>
    public int CompletionTokens { get; init; } = 16;
    /// <summary>PPO's <c>mini-batches</c>: the training forward sees 1/n of the step's samples at a time.</summary>
    public int MiniBatches { get; init; } = 1;
    public bool GradientCheckpointing { get; init; }
    /// <summary><c>optimizer.kind</c>: fp32 moments (8 bytes per trained weight) or 8-bit ones (2 bytes and an absmax per block).</summary>
    public Training.OptimizerKind Optimizer { get; init; } = Training.OptimizerKind.AdamW;
    /// <summary>An online stage scored by the job's reward model (the reward role then holds a copy).</summary>
    public bool ScoredByRewardModel { get; init; }
    /// <summary>Online stages: tokens of the longest prompt, measured from the data (null: the job's <see cref="MemoryJob.PromptTokens"/>).</summary>
    public int? PromptTokens { get; init; }
    /// <summary>Offline stages: tokens of the longest example (a pair's longer side), measured from the data (null: the job's <see cref="MemoryJob.SequenceTokens"/>).</summary>
    public int? SequenceTokens { get; init; }
    /// <summary>Distillation's teacher (read from its config.json), held beside the student.</summary>
    public ModelConfig? Teacher { get; init; }
    /// <summary>An encoder stage (<see cref="MemoryStageKind.Encoder"/>): the encoder it trains beside the policy.</summary>
    public Encoders.EncoderConfig? Encoder { get; init; }
    /// <summary>An encoder stage's LoRA adapters (null: the encoder trained in full).</summary>
    public LoraConfig? EncoderLora { get; init; }
    /// <summary>An encoder stage: sequences per training step (a reward model's pairs count twice).</summary>
    public int EncoderSequencesPerExample { get; init; } = 1;

    public bool IsOnline => Kind is MemoryStageKind.Ppo or MemoryStageKind.Grpo or MemoryStageKind.OnlineDpo;
}

/// <summary>
/// A job as the memory estimate sees it: the model's shape (its config.json only, never its weights) and the
/// settings that decide how many copies of it exist, in which dtype, and how large a step's activations are.
/// </summary>
internal sealed record MemoryJob
{
    public required ModelConfig Model { get; init; }
    public required IReadOnlyList<MemoryStage> Stages { get; init; }
    /// <summary>LoRA adapters trained in the online stages (every stage with <see cref="LoraFromStart"/>); null: full fine-tuning.</summary>
    public LoraConfig? Lora { get; init; }
    public QuantizationOptions Quantization { get; init; } = new();
    /// <summary>LoRA adapters attached from the start, trained by every stage (a quantized base, or a job with no online or federated stage).</summary>
    public bool LoraFromStart { get; init; }
    /// <summary>bf16 mixed precision: a bf16 compute copy of the policy beside its fp32 masters.</summary>
    public bool MixedPrecision { get; init; }
    /// <summary>
    /// LoRA with bf16 compute: from the stage the adapters attach in, the base is held in bf16 (no fp32 master, no
    /// compute copy), shared by the reference and the replicas; the adapters stay fp32.
    /// </summary>
    public bool LoraBf16 { get; init; }
    /// <summary>The dtype frozen copies (reference, rollout replicas, reward model, teacher) are held in.</summary>
    public ScalarType FrozenDtype { get; init; } = ScalarType.Float32;
    public int MaxPolicyLag { get; init; } = 1;
    /// <summary>Rollout replicas in this process (<c>rollout-workers</c>).</summary>
    public int RolloutReplicas { get; init; } = 1;
    /// <summary>Learners training data-parallel in this process (rlft.job.learners): the leader and N − 1 replicas.</summary>
    public int Learners { get; init; } = 1;
    /// <summary>Held-out prompts each online stage samples before and after it (<c>eval-prompts</c>), in batches of at most 64.</summary>
    public int EvalPrompts { get; init; } = 64;
    /// <summary>Tokens assumed per prompt where a stage's own figure is not known: 64 unless told.</summary>
    public int PromptTokens { get; init; } = 64;
    /// <summary>Tokens assumed per offline example (prompt and completion, or each side of a pair) where a stage's own figure is not known: 256 unless told.</summary>
    public int SequenceTokens { get; init; } = 256;
}
