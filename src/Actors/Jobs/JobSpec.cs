using Rlft.Actors.Configuration;
using Rlft.Policy.Training;

namespace Rlft.Actors.Jobs;

/// <summary>The kinds of stage a job walks through, in order.</summary>
public enum StageKind { Sft, RewardModel, Ppo, Dpo, Grpo, Distill, OnlineDpo, Meta, Adapt, Classify, Qa }

/// <summary>
/// A meta-learning stage (<c>kind = meta</c>, its <c>meta { … }</c> section): Reptile (Nichol et al., 2018) over tasks of
/// the built-in family. Each of the stage's <c>steps</c> is one outer round: <see cref="TasksPerRound"/> tasks drawn from
/// <see cref="Tasks"/>, each trained <see cref="InnerSteps"/> steps of <see cref="Inner"/> from the current weights, and
/// the weights moved <see cref="OuterLr"/> of the way toward the adapted weights' mean.
/// </summary>
public sealed record MetaSpec
{
    /// <summary><c>meta.tasks</c>: the family tasks the rounds draw from (required).</summary>
    public required IReadOnlyList<string> Tasks { get; init; }
    /// <summary><c>meta.tasks-per-round</c>: tasks per outer round, in [1, tasks]. Default 1 (Reptile's serial form).</summary>
    public int TasksPerRound { get; init; } = 1;
    /// <summary><c>meta.steps</c>: inner steps on each task. Default 5.</summary>
    public int InnerSteps { get; init; } = 5;
    /// <summary><c>meta.outer-lr</c>: the outer step ε in (0, 1]: θ ← θ + ε (mean θ' − θ). Default 1 (Nichol et al.).</summary>
    public double OuterLr { get; init; } = 1.0;
    /// <summary><c>meta.inner</c>: sft or dpo, the inner objective (on the task's sft or preferences data). Default sft.</summary>
    public StageKind Inner { get; init; } = StageKind.Sft;
}

/// <summary>
/// A k-shot adaptation stage (<c>kind = adapt</c>, its <c>adapt { … }</c> section): for each of <see cref="Tasks"/> (held-out
/// tasks of the built-in family), <see cref="Shots"/> examples and the stage's <c>steps</c> steps of SFT from the stage's
/// starting weights, evaluated on the task's held-out data.
/// </summary>
public sealed record AdaptSpec
{
    /// <summary><c>adapt.tasks</c>: the family tasks to adapt to (required).</summary>
    public required IReadOnlyList<string> Tasks { get; init; }
    /// <summary><c>adapt.shots</c>: examples of each task to adapt on. Default 10.</summary>
    public int Shots { get; init; } = 10;
}

/// <summary>
/// Where the model comes from: a checkpoint directory, or a fresh random init (with <paramref name="ChatTemplate"/>, a
/// built-in template's name, its tokenizer carries that template and its special tokens).
/// </summary>
public sealed record ModelSpec(string? Path, string Arch, string Preset, string? ChatTemplate = null)
{
    /// <summary>
    /// <c>rlft.job.model { quantize, double-quant, compute-dtype, quantize-skip-modules }</c>: the frozen base stored in
    /// 4 or 8 bits at load (QLoRA); every policy-training stage then trains the job's LoRA adapters. Default: none.
    /// </summary>
    public Rlft.Policy.Quantization.QuantizationOptions Quantization { get; init; } = new();

    /// <summary>
    /// <c>rlft.job.model.frozen-dtype = fp32 | bf16</c>: the dtype of the copies nothing trains — the frozen reference,
    /// the rollout replicas, the reward model as the reward role scores with it, the distillation teacher. bf16 halves
    /// their memory; default fp32.
    /// </summary>
    public TorchSharp.torch.ScalarType FrozenDtype { get; init; } = TorchSharp.torch.ScalarType.Float32;
}

/// <summary>Sampling used by rollout workers in online stages.</summary>
public sealed record SamplingSpec(int MaxNewTokens, double Temperature, int TopK, double TopP);

/// <summary>One stage of a job, validated.</summary>
public sealed record StageSpec
{
    public required int Index { get; init; }
    public required StageKind Kind { get; init; }
    public required string Name { get; init; }
    /// <summary>Dataset (sft/preferences/prompts) as a path or <c>builtin:NAME</c>.</summary>
    public required string Data { get; init; }
    public string? EvalData { get; init; }
    public required int Steps { get; init; }
    public required int BatchSize { get; init; }
    public required OptimizerOptions Optimizer { get; init; }
    public PpoOptions Ppo { get; init; } = new();
    public GrpoOptions Grpo { get; init; } = new();
    public DpoOptions Dpo { get; init; } = new();
    public RewardModelOptions RewardModel { get; init; } = new();
    public DistillOptions Distill { get; init; } = new();
    public SamplingSpec Sampling { get; init; } = new(16, 1.0, 0, 1.0);
    /// <summary>The reward spec section (sources, weights, normalisation) for online stages.</summary>
    public RlftConfig? Rewards { get; init; }
    /// <summary>The stage's own configuration object (its <c>rewards</c> key is read by the reward pipeline).</summary>
    public RlftConfig? Config { get; init; }
    /// <summary>Teacher checkpoint for distillation.</summary>
    public ModelSpec? Teacher { get; init; }
    /// <summary>This stage's chat template (a Jinja file or <c>builtin:NAME</c>) instead of the job's or the model's.</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>SFT and distillation: a prompt/completion example learns only its completion (<c>completion-only-loss</c>, default on).</summary>
    public bool CompletionOnlyLoss { get; init; } = true;
    /// <summary>SFT and distillation: a conversation learns only its assistant turns (<c>assistant-only-loss</c>, default on).</summary>
    public bool AssistantOnlyLoss { get; init; } = true;
    /// <summary>Recompute each block's activations in the backward pass (the stage's <c>gradient-checkpointing</c>, else the job's; default off).</summary>
    public bool GradientCheckpointing { get; init; }
    /// <summary>
    /// <c>replay</c>: the share of each batch drawn from earlier stages' data of the same kind, in [0, 1)
    /// (<see cref="Rlft.Rollout.Data.ReplayMixer{T}"/>). Default 0.
    /// </summary>
    public double Replay { get; init; }
    /// <summary><c>l2-sp</c>: weight of the pull toward the stage's starting weights (<see cref="Rlft.Policy.Training.Regularization.L2SpPenalty"/>). Default 0 (off).</summary>
    public double L2Sp { get; init; }
    /// <summary>
    /// <c>ewc</c>: weight of elastic weight consolidation toward the previous policy stage's weights, its Fisher estimated
    /// on that stage's data (<see cref="Rlft.Policy.Training.Regularization.EwcPenalty"/>). Default 0 (off).
    /// </summary>
    public double Ewc { get; init; }
    /// <summary>The earlier stage whose data and end weights EWC consolidates (the latest one that trained the policy); null without ewc.</summary>
    public int? EwcStage { get; init; }
    /// <summary><c>early-stopping { patience, min-delta }</c> on the held-out loss; null: off.</summary>
    public EarlyStoppingOptions? EarlyStopping { get; init; }
    /// <summary>
    /// <c>eval-every</c>: optimizer steps between held-out evaluations during the stage, which early stopping and the
    /// plateau schedule read. Default with either: a tenth of the stage's steps (at least 1); else 0 (before and after only).
    /// </summary>
    public int EvalEvery { get; init; }
    /// <summary><c>meta { … }</c> of a meta stage.</summary>
    public MetaSpec? Meta { get; init; }
    /// <summary><c>adapt { … }</c> of an adapt stage.</summary>
    public AdaptSpec? Adapt { get; init; }
    /// <summary>The encoder a classify, qa or encoder reward-model stage trains (<see cref="EncoderStageSpec"/>); null for the policy's stages.</summary>
    public EncoderStageSpec? Encoder { get; init; }
    /// <summary>Stages that train an encoder of their own and leave the policy and the job's reward model as they are.</summary>
    public bool TrainsEncoder => Encoder is not null;
    /// <summary><c>federated { … }</c>: the stage trains on its clients' data in rounds (<see cref="FederatedSpec"/>); null: on the learner.</summary>
    public FederatedSpec? Federated { get; init; }
    public bool IsOnline => Kind is StageKind.Ppo or StageKind.Grpo or StageKind.OnlineDpo;
    /// <summary>Stages that train the policy on a dataset of their own (what replay, l2-sp, ewc and early stopping apply to).</summary>
    public bool TrainsPolicyOnData => Kind is StageKind.Sft or StageKind.Dpo or StageKind.Distill or StageKind.Ppo or StageKind.Grpo or StageKind.OnlineDpo;

    /// <summary>Samples generated per prompt: GRPO's group, two for online DPO's pairs, else one.</summary>
    public int SamplesPerPrompt => Kind switch { StageKind.Grpo => Grpo.GroupSize, StageKind.OnlineDpo => 2, _ => 1 };
}

/// <summary>A validated job: everything <c>rlft run</c> needs, read from HOCON under <c>rlft.job</c>.</summary>
public sealed record JobSpec
{
    public required string Name { get; init; }
    public required int Seed { get; init; }
    public required string Device { get; init; }
    /// <summary>auto (bf16 compute with fp32 masters on CUDA, fp32 on CPU), fp32 or bf16.</summary>
    public Precision Precision { get; init; } = Precision.Auto;
    public required string OutputRoot { get; init; }
    public required ModelSpec Model { get; init; }
    public required int MaxPolicyLag { get; init; }
    public required int RolloutWorkers { get; init; }
    /// <summary>
    /// Learners that train the policy data-parallel (<c>rlft.job.learners</c>, default 1): <c>rlft run</c> hosts them in
    /// one process, the leader and N − 1 replicas, each training on its share of every batch and summing gradients with
    /// the others (<see cref="Compute.LearnerGroupEngine"/>). <see cref="LearnersReader"/> says which jobs a group can run.
    /// </summary>
    public int Learners { get; init; } = 1;
    /// <summary>
    /// Every how many optimizer steps a learner group's members compare a hash of their trainable weights
    /// (<c>rlft.job.group-check-every</c>, default 50; 0 never); replicas that differ stop the job with a message.
    /// </summary>
    public int GroupCheckEvery { get; init; } = LearnersReader.DefaultCheckEvery;
    /// <summary>
    /// Sequences a rollout worker decodes at once with continuous batching (<c>rlft.job.rollout.slots</c>, default 16):
    /// a batch of more prompts than this keeps that many decoding, each finished sequence's slot going to the next
    /// prompt. 0 (<c>continuous-batching = off</c>) decodes each batch as one static batch.
    /// </summary>
    public int RolloutSlots { get; init; } = JobSpecReader.DefaultRolloutSlots;
    /// <summary>
    /// rlft.job.weight-sync.stream-port: the TCP port of the learner node's weight stream (remote replicas fetch a
    /// version's bytes from it in one stream), on the node's remote hostname. 0 (default): a free port, announced with
    /// each version; -1: no stream, replicas fetch chunks through the weight server actor.
    /// </summary>
    public int WeightStreamPort { get; init; }
    /// <summary>
    /// rlft.job.weight-sync.sync-dtype = bf16: remote replicas receive floating-point tensors as bf16 (half the bytes;
    /// relative error ≤ 2^-9 per weight) and widen them to fp32 on arrival. fp32 (default): bit-exact. Replicas in the
    /// learner's process share its tensors either way.
    /// </summary>
    public bool SyncBf16 { get; init; }
    /// <summary>Online steps between checkpoints (checkpoints/step-N, N the global step); 0: only the final one.</summary>
    public required int CheckpointEvery { get; init; }
    /// <summary>How many checkpoints to keep (the newest; older ones are deleted as new ones land); 0: all.</summary>
    public int KeepCheckpoints { get; init; }
    public required int EvalPrompts { get; init; }
    /// <summary>
    /// Online batches in a row whose scoring may fail (every sample dropped, or the reward actor failing) before the
    /// job fails; each such batch is skipped and another generated in its place (<c>reward/skipped_batches</c>).
    /// </summary>
    public int MaxConsecutiveRewardFailures { get; init; } = 3;
    public required IReadOnlyList<StageSpec> Stages { get; init; }
    public required RlftConfig Source { get; init; }
    /// <summary>
    /// The job's feedback endpoint (<c>rlft.feedback</c>, as in hocon/feedback.conf): the node with the
    /// <c>feedback</c> role hosts it; its journal defaults to feedback.db in the run directory.
    /// </summary>
    public Rlft.Actors.Feedback.FeedbackOptions? Feedback { get; init; }
    /// <summary>
    /// LoRA adapters (<c>rlft.job.lora</c>). In a job with an online (ppo, grpo, online-dpo) or federated stage they
    /// are attached to the policy when the first such stage begins and are all that is trained from then on (earlier
    /// sft/dpo stages train the full weights); the frozen base is the reference and weight sync moves only adapter
    /// tensors. In a job with neither, and always with a quantized base (<see cref="ModelSpec.Quantization"/>), they
    /// are attached at load and every stage trains them (<see cref="LoraFromStart"/>). Null: full fine-tuning.
    /// </summary>
    public Rlft.Policy.Lora.LoraConfig? Lora { get; init; }
    /// <summary>
    /// The chat template every stage renders conversations with (<c>rlft.job.chat-template</c>: a Jinja file or
    /// <c>builtin:NAME</c>) instead of the model's own; null: the model's. A stage's own key wins over it.
    /// </summary>
    public string? ChatTemplate { get; init; }
    /// <summary>
    /// The reward functions this job's <c>source = function</c> components may name: the built-ins and those a program
    /// registered in code (<see cref="Rlft.Hosting.RlftJobBuilder.RewardFunction(string, Func{Rlft.Reward.RewardSample, double})"/>);
    /// null: the built-ins (<see cref="Compute.TorchRewardEngine.Functions()"/>). Not in the job file: a program's code.
    /// </summary>
    internal Rlft.Reward.Sources.RewardFunctionRegistry? RewardFunctions { get; init; }

    /// <summary>The template override in force for <paramref name="stage"/> (its own, else the job's), or null for the model's template.</summary>
    internal string? ChatTemplateFor(StageSpec stage) => stage.ChatTemplate ?? ChatTemplate;
    /// <summary>True when a stage's reward pipeline asks human raters (<c>source = human</c>).</summary>
    public bool UsesHumanRatings => Stages.Any(s => s.Rewards?.Has("components") == true
        && s.Rewards.GetObjectList("components").Any(c => c.Has("source") && c.GetString("source") == "human"));

    public string RunDirectory => System.IO.Path.Combine(OutputRoot, Name);

    /// <summary>True when the policy's base is quantized (QLoRA): adapters from the start, in every stage.</summary>
    public bool QuantizedBase => Model.Quantization.Enabled;

    /// <summary>
    /// LoRA adapters attached when the job starts and trained by every stage: a quantized base, or a job with no online
    /// or federated stage (an SFT and/or DPO job with <c>lora</c>); a DPO stage's reference is then the policy as the
    /// stage found it (the base with the adapters off while they are still zero), as TRL's DPOTrainer with a PEFT model.
    /// </summary>
    public bool LoraFromStart => Lora is not null && (QuantizedBase || !Stages.Any(s => s.IsOnline || s.Federated is not null));

    /// <summary>
    /// LoRA with bf16 compute on <paramref name="device"/> (<c>precision = bf16</c>, or <c>auto</c> on CUDA): once the
    /// adapters attach, the frozen base needs no fp32 master, so it is held in bf16 (half its memory) and the adapters
    /// stay fp32 and train as they are, as PEFT keeps them (<c>autocast_adapter_dtype</c>).
    /// </summary>
    internal bool LoraInBf16(TorchSharp.torch.Device device) =>
        Lora is not null && !QuantizedBase && MixedPrecisionModel.Wanted(Precision, device);

    /// <summary>
    /// The dtype of the policy's frozen copies on <paramref name="device"/> (rollout replicas, references, teachers):
    /// <c>model.frozen-dtype</c>, or bf16 under LoRA with bf16 compute, whose replicas share the learner's bf16 base.
    /// </summary>
    internal TorchSharp.torch.ScalarType PolicyFrozenDtype(TorchSharp.torch.Device device) =>
        LoraInBf16(device) ? TorchSharp.torch.ScalarType.BFloat16 : Model.FrozenDtype;

    /// <summary>Reads and validates a job file; <paramref name="overrides"/> are <c>key=value</c> pairs under rlft.job.</summary>
    public static JobSpec Load(string path, IReadOnlyList<string>? overrides = null) => JobSpecReader.Parse(WithOverrides(RlftConfig.LoadFile(path), overrides));

    /// <summary>A job file's text as read from <paramref name="path"/> (includes resolve beside it), with overrides.</summary>
    public static JobSpec LoadText(string text, string path, IReadOnlyList<string>? overrides = null) =>
        JobSpecReader.Parse(WithOverrides(ParseText(text, path), overrides));

    /// <summary>
    /// Reads a job file and checks everything the <paramref name="parts"/> of it this process runs will read and
    /// write (<see cref="JobValidator"/>), before anything starts: every error in the file and every problem with
    /// its models, datasets, reward specs and output directory, all in one <see cref="ConfigException"/>.
    /// </summary>
    public static JobSpec LoadChecked(string path, IReadOnlyList<string>? overrides = null, JobParts parts = JobParts.All) =>
        Checked(WithOverrides(RlftConfig.LoadFile(path), overrides), parts);

    /// <summary><see cref="LoadChecked"/> for a job file's recorded text (a resumed run).</summary>
    public static JobSpec LoadTextChecked(string text, string path, IReadOnlyList<string>? overrides = null, JobParts parts = JobParts.All, Func<JobSpec, JobSpec>? relocate = null) =>
        Checked(WithOverrides(ParseText(text, path), overrides), parts, relocate);

    static RlftConfig ParseText(string text, string path) =>
        RlftConfig.ParseText(text, path, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)));

    static JobSpec Checked(RlftConfig config, JobParts parts, Func<JobSpec, JobSpec>? relocate = null)
    {
        var errors = new ConfigErrors();
        var spec = JobSpecReader.Parse(config, errors);
        if (relocate is not null) spec = relocate(spec);
        // Keys that already failed to read are not checked further: their values are placeholders.
        foreach (var problem in JobValidator.Check(spec, parts, failed: key => errors.All.Any(e => e.StartsWith(key, StringComparison.Ordinal))))
            errors.Add(problem);
        errors.ThrowIfAny();
        return spec;
    }

    static RlftConfig WithOverrides(RlftConfig file, IReadOnlyList<string>? overrides)
    {
        if (overrides is { Count: > 0 })
        {
            var lines = overrides.Select(o =>
            {
                int eq = o.IndexOf('=');
                if (eq <= 0) throw new ConfigException($"--set {o}: expected key=value");
                return $"{JobSpecReader.Root}.{o[..eq].Trim()} = {o[(eq + 1)..].Trim()}";
            });
            file = RlftConfig.ParseText(string.Join("\n", lines), "--set").WithFallback(file);
        }
        return file;
    }

    /// <summary>Reads and validates a parsed job configuration (every error at once, each naming its key path).</summary>
    public static JobSpec Parse(RlftConfig c) => JobSpecReader.Parse(c);
}
