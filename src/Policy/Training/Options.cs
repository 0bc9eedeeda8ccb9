namespace Rlft.Policy.Training;

/// <summary>An option outside its valid range; the message names the option (its config key).</summary>
public sealed class OptionException(string message) : ArgumentException(message);

internal static class Check
{
    public static void Range(string name, double value, double min, double max, bool minExclusive = false)
    {
        bool low = minExclusive ? value <= min : value < min;
        if (double.IsNaN(value) || low || value > max)
            throw new OptionException($"{name}: {value} is outside {(minExclusive ? "(" : "[")}{min}, {max}]");
    }

    public static void Positive(string name, int value)
    {
        if (value <= 0) throw new OptionException($"{name}: must be a positive integer, got {value}");
    }
}

/// <summary>
/// Learning-rate schedule after warmup. Plateau: constant until a held-out metric stops improving, then lowered
/// (<see cref="PlateauSchedule"/>, settings in <see cref="OptimizerOptions.Plateau"/>).
/// </summary>
public enum LrSchedule { Constant, Linear, Cosine, Plateau }

/// <summary>
/// The update rule. <c>adamw</c>: torch's AdamW, fp32 moments (8 bytes of state per weight). <c>adamw-8bit</c>: the same
/// update with both moments stored as block-wise 8-bit codes (<see cref="Optimizers.AdamW8bit"/>, about 2 bytes per weight).
/// </summary>
public enum OptimizerKind { AdamW, AdamW8bit }

/// <summary>Optimiser, schedule, accumulation, clipping and precision settings shared by every stage.</summary>
public sealed record OptimizerOptions
{
    /// <summary>AdamW with fp32 or 8-bit block-wise moments. Default AdamW (fp32 moments).</summary>
    public OptimizerKind Kind { get; init; } = OptimizerKind.AdamW;
    /// <summary>The config name of <paramref name="kind"/>: adamw, adamw-8bit.</summary>
    internal static string KindName(OptimizerKind kind) => kind == OptimizerKind.AdamW8bit ? "adamw-8bit" : "adamw";
    /// <summary>AdamW learning rate. Default 1e-4 (tiny models; TRL uses 1e-5…1e-6 for large ones).</summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>AdamW β1. Default 0.9 (Loshchilov &amp; Hutter; PyTorch default).</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW β2. Default 0.999 (PyTorch default; TRL/OpenRLHF keep it, some use 0.95).</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary>AdamW ε. Default 1e-8 (PyTorch default).</summary>
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Decoupled weight decay. Default 0.0 (TRL/transformers default).</summary>
    public double WeightDecay { get; init; } = 0.0;
    /// <summary>Linear warmup steps from 0 to the learning rate. Default 0 (transformers default).</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Decay after warmup. Default linear (transformers' default lr_scheduler_type).</summary>
    public LrSchedule Schedule { get; init; } = LrSchedule.Linear;
    /// <summary>Total optimiser steps the schedule spans (decay reaches MinLrRatio at this step). Default 1000.</summary>
    public int TotalSteps { get; init; } = 1000;
    /// <summary>Final learning rate as a fraction of the peak. Default 0.0 (transformers' linear/cosine).</summary>
    public double MinLrRatio { get; init; }
    /// <summary>
    /// Updates of the schedule already behind this optimizer: its first update takes the rate of update
    /// <c>ScheduleOffset</c> (a federated client's round r of s local steps starts at r·s). Default 0.
    /// </summary>
    public int ScheduleOffset { get; init; }
    /// <summary>Micro-batches whose gradients are summed before one update. Default 1.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Global gradient-norm clip; 0 disables. Default 1.0 (TRL, OpenRLHF).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Skip (and report) an update whose loss or gradients are NaN/Inf. Default true.</summary>
    public bool SkipNonFinite { get; init; } = true;
    /// <summary>Reduce-on-plateau settings, used when <see cref="Schedule"/> is <see cref="LrSchedule.Plateau"/>.</summary>
    public PlateauOptions Plateau { get; init; } = new();

    public OptimizerOptions Validate(string prefix = "optimizer")
    {
        Check.Range($"{prefix}.lr", LearningRate, 0, 10, minExclusive: true);
        Check.Range($"{prefix}.beta1", Beta1, 0, 1);
        Check.Range($"{prefix}.beta2", Beta2, 0, 1);
        Check.Range($"{prefix}.eps", Epsilon, 0, 1, minExclusive: true);
        Check.Range($"{prefix}.weight-decay", WeightDecay, 0, 10);
        if (WarmupSteps < 0) throw new OptionException($"{prefix}.warmup-steps: must be >= 0, got {WarmupSteps}");
        if (ScheduleOffset < 0) throw new OptionException($"{prefix}: the schedule offset must be >= 0, got {ScheduleOffset}");
        Check.Positive($"{prefix}.total-steps", TotalSteps);
        Check.Range($"{prefix}.min-lr-ratio", MinLrRatio, 0, 1);
        Check.Positive($"{prefix}.gradient-accumulation-steps", GradientAccumulationSteps);
        Check.Range($"{prefix}.max-grad-norm", MaxGradNorm, 0, 1e6);
        if (Schedule == LrSchedule.Plateau)
        {
            Plateau.Validate($"{prefix}.plateau");
            if (Plateau.MinLr > LearningRate) throw new OptionException($"{prefix}.plateau.min-lr: {Plateau.MinLr} is above the learning rate {LearningRate}");
        }
        return this;
    }
}

/// <summary>PPO for language models. Defaults from ALGORITHMS.md (TRL PPOConfig / OpenRLHF).</summary>
public sealed record PpoOptions
{
    /// <summary>Initial KL coefficient β. Default 0.05 (TRL PPO; OpenRLHF 0.01, DeepSpeed-Chat 0.1).</summary>
    public double KlCoef { get; init; } = 0.05;
    /// <summary>Estimator of per-token KL in the shaped reward. Default k1 (TRL, InstructGPT).</summary>
    public KlEstimator KlEstimator { get; init; } = KlEstimator.K1;
    /// <summary>Adaptive KL controller (Ziegler et al., 2019). Default false (fixed β, TRL default).</summary>
    public bool AdaptiveKl { get; init; }
    /// <summary>Adaptive controller target KL, nats per sequence. Default 6.0 (Ziegler et al.).</summary>
    public double KlTarget { get; init; } = 6.0;
    /// <summary>Adaptive controller horizon in samples. Default 10000 (Ziegler et al.).</summary>
    public double KlHorizon { get; init; } = 10000;
    /// <summary>Clip of the sequence score before shaping. Default 10 (OpenRLHF; DeepSpeed-Chat 5).</summary>
    public double RewardClip { get; init; } = 10.0;
    /// <summary>Discount γ. Default 1.0 (TRL, OpenRLHF).</summary>
    public double Gamma { get; init; } = 1.0;
    /// <summary>GAE λ. Default 0.95 (TRL; OpenRLHF and veRL use 1.0).</summary>
    public double Lambda { get; init; } = 0.95;
    /// <summary>Policy ratio clip ε. Default 0.2 (Schulman et al., 2017; TRL).</summary>
    public double ClipRange { get; init; } = 0.2;
    /// <summary>Value clip ε_v. Default 0.2 (TRL; OpenRLHF 0.5).</summary>
    public double ValueClipRange { get; init; } = 0.2;
    /// <summary>Value-loss coefficient. Default 0.1 (TRL vf_coef).</summary>
    public double ValueCoef { get; init; } = 0.1;
    /// <summary>Entropy bonus coefficient. Default 0 (TRL, OpenRLHF).</summary>
    public double EntropyCoef { get; init; }
    /// <summary>Optimisation epochs over each batch of experience. Default 4 (TRL num_ppo_epochs).</summary>
    public int Epochs { get; init; } = 4;
    /// <summary>Minibatches per epoch. Default 1 (TRL num_mini_batches).</summary>
    public int MiniBatches { get; init; } = 1;
    /// <summary>Whiten advantages over the masked batch. Default true (TRL, OpenRLHF).</summary>
    public bool WhitenAdvantages { get; init; } = true;
    /// <summary>Whether the first minibatch's training pass gives the behaviour quantities where it can (see <see cref="Trainers.PpoTrainer"/>); off only to compare.</summary>
    internal bool ReuseBehaviourPass { get; init; } = true;

    public PpoOptions Validate(string prefix = "ppo")
    {
        Check.Range($"{prefix}.kl-coef", KlCoef, 0, 100);
        Check.Range($"{prefix}.kl-target", KlTarget, 0, 1e6, minExclusive: true);
        Check.Range($"{prefix}.kl-horizon", KlHorizon, 0, 1e12, minExclusive: true);
        Check.Range($"{prefix}.reward-clip", RewardClip, 0, 1e6, minExclusive: true);
        Check.Range($"{prefix}.gamma", Gamma, 0, 1);
        Check.Range($"{prefix}.lambda", Lambda, 0, 1);
        Check.Range($"{prefix}.clip-range", ClipRange, 0, 1, minExclusive: true);
        Check.Range($"{prefix}.value-clip-range", ValueClipRange, 0, 1e6, minExclusive: true);
        Check.Range($"{prefix}.value-coef", ValueCoef, 0, 1e3);
        Check.Range($"{prefix}.entropy-coef", EntropyCoef, 0, 10);
        Check.Positive($"{prefix}.epochs", Epochs);
        Check.Positive($"{prefix}.mini-batches", MiniBatches);
        return this;
    }
}

/// <summary>GRPO (Shao et al., 2024, DeepSeekMath). Defaults from TRL GRPOConfig unless noted.</summary>
public sealed record GrpoOptions
{
    /// <summary>Samples per prompt G. Default 8 (TRL num_generations; NeMo 16).</summary>
    public int GroupSize { get; init; } = 8;
    /// <summary>Lower ratio clip ε. Default 0.2 (TRL).</summary>
    public double ClipLow { get; init; } = 0.2;
    /// <summary>Upper ratio clip. Default 0.2 (TRL; DAPO suggests 0.28).</summary>
    public double ClipHigh { get; init; } = 0.2;
    /// <summary>k3 KL coefficient in the loss. Default 0.04 (TRL ≤ 0.14; R1 used 0.001).</summary>
    public double KlCoef { get; init; } = 0.04;
    /// <summary>Optimisation epochs per batch (μ). Default 1 (TRL num_iterations).</summary>
    public int Epochs { get; init; } = 1;
    /// <summary>
    /// Divide each group's advantages by the group's reward std (GRPO as published; TRL scale_rewards = "group").
    /// Off: advantages are r − mean only (Dr. GRPO, Liu et al., 2025), which keeps a rare failure in an
    /// otherwise solved group from getting a large negative advantage. Default on.
    /// </summary>
    public bool ScaleRewards { get; init; } = true;
    /// <summary>Whether the first epoch's training pass gives log π_old where it can (see <see cref="Trainers.GrpoTrainer"/>); off only to compare.</summary>
    internal bool ReuseBehaviourPass { get; init; } = true;

    public GrpoOptions Validate(string prefix = "grpo")
    {
        if (GroupSize < 2) throw new OptionException($"{prefix}.group-size: must be >= 2 (advantages are relative to the group), got {GroupSize}");
        Check.Range($"{prefix}.clip-low", ClipLow, 0, 1, minExclusive: true);
        Check.Range($"{prefix}.clip-high", ClipHigh, 0, 10, minExclusive: true);
        Check.Range($"{prefix}.kl-coef", KlCoef, 0, 100);
        Check.Positive($"{prefix}.epochs", Epochs);
        return this;
    }
}

/// <summary>DPO and relatives. Defaults from TRL DPOConfig.</summary>
public sealed record DpoOptions
{
    /// <summary>β, the strength of the implicit KL constraint. Default 0.1 (Rafailov et al.; TRL).</summary>
    public double Beta { get; init; } = 0.1;
    /// <summary>Loss variant. Default sigmoid (TRL loss_type).</summary>
    public DpoLossType LossType { get; init; } = DpoLossType.Sigmoid;
    /// <summary>cDPO label smoothing ε in [0, 0.5). Default 0 (TRL).</summary>
    public double LabelSmoothing { get; init; }
    /// <summary>Compute reference log-probs once for the whole dataset before training. Default false (TRL precompute_ref_log_probs).</summary>
    public bool PrecomputeReference { get; init; }

    public DpoOptions Validate(string prefix = "dpo")
    {
        Check.Range($"{prefix}.beta", Beta, 0, 1e3, minExclusive: true);
        if (LabelSmoothing < 0 || LabelSmoothing >= 0.5) throw new OptionException($"{prefix}.label-smoothing: {LabelSmoothing} is outside [0, 0.5)");
        if (LossType == DpoLossType.Ipo && LabelSmoothing != 0) throw new OptionException($"{prefix}.label-smoothing: applies to the sigmoid loss only, not ipo");
        return this;
    }
}

/// <summary>Reward-model training (Bradley–Terry). Defaults from TRL RewardConfig.</summary>
public sealed record RewardModelOptions
{
    /// <summary>Margin subtracted inside the sigmoid (Llama-2 style) when the data carries one. Default 0.</summary>
    public double Margin { get; init; }
    /// <summary>Coefficient of the (r_c + r_r)² centering term (TRL center_rewards_coefficient). Default 0 (off).</summary>
    public double CenterRewardsCoef { get; init; }

    public RewardModelOptions Validate(string prefix = "reward-model")
    {
        Check.Range($"{prefix}.margin", Margin, 0, 1e3);
        Check.Range($"{prefix}.center-rewards-coef", CenterRewardsCoef, 0, 1e3);
        return this;
    }
}

/// <summary>Knowledge distillation (token-level forward KL teacher‖student; Hinton et al., 2015; GKD).</summary>
public sealed record DistillOptions
{
    /// <summary>Softmax temperature for both distributions. Default 1.0 (TRL GKD).</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Fraction of batches on student-sampled sequences (GKD λ). Default 0 (dataset sequences only).</summary>
    public double OnPolicyFraction { get; init; }

    public DistillOptions Validate(string prefix = "distill")
    {
        Check.Range($"{prefix}.temperature", Temperature, 0, 100, minExclusive: true);
        Check.Range($"{prefix}.on-policy-fraction", OnPolicyFraction, 0, 1);
        return this;
    }
}

/// <summary>Variants of the DPO objective.</summary>
public enum DpoLossType
{
    /// <summary>−log σ(βh) (Rafailov et al., 2023); with label smoothing ε it is cDPO.</summary>
    Sigmoid,
    /// <summary>(h − 1/(2β))² (Azar et al., 2023).</summary>
    Ipo,
}
