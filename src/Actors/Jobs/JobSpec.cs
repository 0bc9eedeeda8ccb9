using Rlft.Actors.Configuration;
using Rlft.Policy.Training;

namespace Rlft.Actors.Jobs;

/// <summary>The kinds of stage a job walks through, in order.</summary>
public enum StageKind { Sft, RewardModel, Ppo, Dpo, Grpo, Distill, OnlineDpo }

/// <summary>Where the model comes from: a checkpoint directory, or a fresh random init.</summary>
public sealed record ModelSpec(string? Path, string Arch, string Preset);

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
    public bool IsOnline => Kind is StageKind.Ppo or StageKind.Grpo or StageKind.OnlineDpo;

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
    /// <summary>Online steps between checkpoints (checkpoints/step-N, N the global step); 0: only the final one.</summary>
    public required int CheckpointEvery { get; init; }
    /// <summary>How many checkpoints to keep (the newest; older ones are deleted as new ones land); 0: all.</summary>
    public int KeepCheckpoints { get; init; }
    public required int EvalPrompts { get; init; }
    public required IReadOnlyList<StageSpec> Stages { get; init; }
    public required RlftConfig Source { get; init; }
    /// <summary>
    /// The job's feedback endpoint (<c>rlft.feedback</c>, as in hocon/feedback.conf): the node with the
    /// <c>feedback</c> role hosts it; its journal defaults to feedback.db in the run directory.
    /// </summary>
    public Rlft.Actors.Feedback.FeedbackOptions? Feedback { get; init; }
    /// <summary>
    /// LoRA for the online stages (<c>rlft.job.lora</c>): adapters are attached to the policy when the first
    /// online stage begins and are all that is trained from then on; the frozen base is the reference and
    /// weight sync moves only adapter tensors. Null: full fine-tuning.
    /// </summary>
    public Rlft.Policy.Lora.LoraConfig? Lora { get; init; }
    /// <summary>True when a stage's reward pipeline asks human raters (<c>source = human</c>).</summary>
    public bool UsesHumanRatings => Stages.Any(s => s.Rewards?.Has("components") == true
        && s.Rewards.GetObjectList("components").Any(c => c.Has("source") && c.GetString("source") == "human"));

    public string RunDirectory => System.IO.Path.Combine(OutputRoot, Name);

    static readonly string[] JobKeys = ["name", "seed", "device", "precision", "output-dir", "model", "max-policy-lag", "rollout-workers", "checkpoint-every", "keep-checkpoints", "eval-prompts", "stages", "lora"];
    static readonly string[] LoraKeys = ["rank", "alpha", "dropout", "target-modules"];
    static readonly string[] StageKeys = ["kind", "name", "data", "eval-data", "steps", "batch-size", "optimizer", "ppo", "grpo", "dpo", "reward-model", "distill", "sampling", "rewards", "teacher"];
    static readonly string[] OptimizerKeys = ["lr", "beta1", "beta2", "eps", "weight-decay", "warmup-steps", "schedule", "min-lr-ratio", "gradient-accumulation-steps", "max-grad-norm", "skip-non-finite"];
    static readonly string[] PpoKeys = ["kl-coef", "kl-estimator", "adaptive-kl", "kl-target", "kl-horizon", "reward-clip", "gamma", "lambda", "clip-range", "value-clip-range", "value-coef", "entropy-coef", "epochs", "mini-batches", "whiten-advantages"];
    static readonly string[] GrpoKeys = ["group-size", "clip-low", "clip-high", "kl-coef", "epochs"];
    static readonly string[] DpoKeys = ["beta", "loss", "label-smoothing", "precompute-reference"];
    static readonly string[] RmKeys = ["margin", "center-rewards-coef"];
    static readonly string[] DistillKeys = ["temperature", "on-policy-fraction"];
    static readonly string[] SamplingKeys = ["max-new-tokens", "temperature", "top-k", "top-p"];
    static readonly string[] ModelKeys = ["path", "arch", "preset"];

    const string Root = "rlft.job";

    /// <summary>Reads and validates a job file; <paramref name="overrides"/> are <c>key=value</c> pairs under rlft.job.</summary>
    public static JobSpec Load(string path, IReadOnlyList<string>? overrides = null) => WithOverrides(RlftConfig.LoadFile(path), overrides);

    /// <summary>A job file's text as read from <paramref name="path"/> (includes resolve beside it), with overrides.</summary>
    public static JobSpec LoadText(string text, string path, IReadOnlyList<string>? overrides = null) =>
        WithOverrides(RlftConfig.ParseText(text, path, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))), overrides);

    static JobSpec WithOverrides(RlftConfig file, IReadOnlyList<string>? overrides)
    {
        if (overrides is { Count: > 0 })
        {
            var lines = overrides.Select(o =>
            {
                int eq = o.IndexOf('=');
                if (eq <= 0) throw new ConfigException($"--set {o}: expected key=value");
                return $"{Root}.{o[..eq].Trim()} = {o[(eq + 1)..].Trim()}";
            });
            file = RlftConfig.ParseText(string.Join("\n", lines), "--set").WithFallback(file);
        }
        return Parse(file);
    }

    public static JobSpec Parse(RlftConfig c)
    {
        if (!c.Has(Root)) throw new ConfigException($"{Root}: missing (a job file defines rlft.job {{ ... }}) in {c.Source}");
        c.RejectUnknownKeys(Root, JobKeys);
        c.RejectUnknownKeys($"{Root}.model", ModelKeys);
        var stages = c.GetObjectList($"{Root}.stages");
        if (stages.Count == 0) throw new ConfigException($"{Root}.stages: a job needs at least one stage (in {c.Source})");
        string name = c.GetString($"{Root}.name");
        if (name.Length == 0 || name.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0 || name.Contains(".."))
            throw new ConfigException($"{Root}.name: '{name}' is not usable as a directory name");
        var parsedStages = stages.Select((s, i) => ParseStage(s, i)).ToList();
        var lora = ParseLora(c, parsedStages);
        return new JobSpec
        {
            Lora = lora,
            Name = name,
            Seed = c.GetInt($"{Root}.seed", 0, min: 0),
            Device = c.GetEnum($"{Root}.device", ["auto", "cpu", "cuda"], "auto"),
            Precision = c.GetEnum($"{Root}.precision", ["auto", "fp32", "bf16"], "auto") switch { "fp32" => Precision.Fp32, "bf16" => Precision.Bf16, _ => Precision.Auto },
            OutputRoot = c.GetString($"{Root}.output-dir", "runs"),
            Model = ParseModel(c, $"{Root}.model"),
            MaxPolicyLag = c.GetInt($"{Root}.max-policy-lag", 1, min: 0, max: 16),
            RolloutWorkers = c.GetInt($"{Root}.rollout-workers", 1, min: 1, max: 64),
            CheckpointEvery = c.GetInt($"{Root}.checkpoint-every", 0, min: 0),
            KeepCheckpoints = c.GetInt($"{Root}.keep-checkpoints", 0, min: 0),
            EvalPrompts = c.GetInt($"{Root}.eval-prompts", 64, min: 1, max: 100_000),
            Stages = parsedStages,
            Source = c,
            Feedback = c.Has("rlft.feedback")
                ? Rlft.Actors.Feedback.FeedbackOptions.FromConfig(c, defaultJournal: System.IO.Path.Combine(c.GetString($"{Root}.output-dir", "runs"), name, "feedback.db"))
                : null,
        };
    }

    static Rlft.Policy.Lora.LoraConfig? ParseLora(RlftConfig c, IReadOnlyList<StageSpec> stages)
    {
        const string at = Root + ".lora";
        if (!c.Has(at)) return null;
        c.RejectUnknownKeys(at, LoraKeys);
        var d = new Rlft.Policy.Lora.LoraConfig();
        var config = new Rlft.Policy.Lora.LoraConfig
        {
            Rank = c.GetInt($"{at}.rank", d.Rank, min: 1, max: 4096),
            Alpha = c.GetDouble($"{at}.alpha", d.Alpha, min: 1e-6),
            Dropout = c.GetDouble($"{at}.dropout", 0, min: 0, max: 0.99),
            // Every attention projection of both families (GPT-2's c_attn/c_proj, Llama's q/k/v/o_proj).
            TargetModules = c.GetStringList($"{at}.target-modules", ["c_attn", "c_proj", "q_proj", "k_proj", "v_proj", "o_proj"]),
        };
        if (config.TargetModules.Count == 0) throw new ConfigException($"{at}.target-modules: at least one module name is needed (in {c.Source})");
        int firstOnline = stages.FirstOrDefault(s => s.IsOnline)?.Index
            ?? throw new ConfigException($"{at}: LoRA applies to the online stages (ppo, grpo, online-dpo) and this job has none (in {c.Source})");
        var later = stages.FirstOrDefault(s => s.Index > firstOnline && s.Kind is StageKind.Sft or StageKind.Dpo or StageKind.Distill);
        if (later is not null)
            throw new ConfigException($"{Root}.stages[{later.Index}]: a {later.Name} stage cannot follow a LoRA stage (the base weights are frozen from stage {firstOnline} on); move it before, or drop {at}");
        return config;
    }

    static ModelSpec ParseModel(RlftConfig c, string at)
    {
        string? path = c.Has($"{at}.path") ? c.GetString($"{at}.path") : null;
        return new ModelSpec(path,
            c.GetEnum($"{at}.arch", ["gpt2", "llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"], "gpt2"),
            c.GetEnum($"{at}.preset", ["tiny", "small"], "tiny"));
    }

    static StageSpec ParseStage(RlftConfig s, int index)
    {
        string at = $"{Root}.stages[{index}]";
        Reject(s, "", StageKeys, at);
        var kind = Wrap(at, () => s.GetEnum("kind", ["sft", "reward-model", "ppo", "dpo", "grpo", "distill", "online-dpo"])) switch
        {
            "sft" => StageKind.Sft,
            "reward-model" => StageKind.RewardModel,
            "ppo" => StageKind.Ppo,
            "dpo" => StageKind.Dpo,
            "grpo" => StageKind.Grpo,
            "online-dpo" => StageKind.OnlineDpo,
            _ => StageKind.Distill,
        };
        Wrap(at, () =>
        {
            foreach (var (section, keys) in new[] { ("optimizer", OptimizerKeys), ("ppo", PpoKeys), ("grpo", GrpoKeys), ("dpo", DpoKeys), ("reward-model", RmKeys), ("distill", DistillKeys), ("sampling", SamplingKeys), ("teacher", ModelKeys) })
                s.RejectUnknownKeys(section, keys);
        });
        return Wrap(at, () => new StageSpec
        {
            Index = index,
            Kind = kind,
            Name = s.GetString("name", $"{index}-{s.GetString("kind")}"),
            Data = s.GetString("data"),
            EvalData = s.Has("eval-data") ? s.GetString("eval-data") : null,
            Steps = s.GetInt("steps", min: 1),
            BatchSize = s.GetInt("batch-size", 16, min: 1, max: 4096),
            Optimizer = ParseOptimizer(s.Section("optimizer"), s.GetInt("steps", min: 1)).Validate($"{at}.optimizer"),
            Ppo = ParsePpo(s.Section("ppo")).Validate($"{at}.ppo"),
            Grpo = ParseGrpo(s.Section("grpo")).Validate($"{at}.grpo"),
            Dpo = ParseDpo(s.Section("dpo")).Validate($"{at}.dpo"),
            RewardModel = new RewardModelOptions
            {
                Margin = s.GetDouble("reward-model.margin", 0),
                CenterRewardsCoef = s.GetDouble("reward-model.center-rewards-coef", 0),
            }.Validate($"{at}.reward-model"),
            Distill = new DistillOptions
            {
                Temperature = s.GetDouble("distill.temperature", 1.0),
                OnPolicyFraction = s.GetDouble("distill.on-policy-fraction", 0),
            }.Validate($"{at}.distill"),
            Sampling = new SamplingSpec(
                s.GetInt("sampling.max-new-tokens", 16, min: 1, max: 4096),
                s.GetDouble("sampling.temperature", 1.0, min: 0, max: 100),
                s.GetInt("sampling.top-k", 0, min: 0),
                s.GetDouble("sampling.top-p", 1.0, min: 0, max: 1)),
            Rewards = s.Has("rewards") ? s.Section("rewards") : null,
            Config = s,
            Teacher = s.Has("teacher") ? ParseModel(s, "teacher") : null,
        });
    }

    static void Reject(RlftConfig s, string path, string[] keys, string display)
    {
        try { s.RejectUnknownKeys(path, keys); }
        catch (ConfigException e) { throw Rename(e, display); }
    }

    static T Wrap<T>(string at, Func<T> read)
    {
        try { return read(); }
        catch (ConfigException e) { throw Rename(e, at); }
        catch (OptionException e) { throw new ConfigException(e.Message); }
    }

    static void Wrap(string at, Action read) => Wrap(at, () => { read(); return 0; });

    // Errors inside a stage name the stage's full path: rlft.job.stages[2].ppo.gamma.
    static ConfigException Rename(ConfigException e, string at)
    {
        string msg = e.Message;
        int paren = msg.LastIndexOf(" (in ", StringComparison.Ordinal);
        if (paren > 0) msg = msg[..paren];
        return new ConfigException(msg.StartsWith(Root, StringComparison.Ordinal) ? msg : $"{at}.{msg}");
    }

    static OptimizerOptions ParseOptimizer(RlftConfig o, int steps) => new()
    {
        LearningRate = o.GetDouble("lr", 1e-4),
        Beta1 = o.GetDouble("beta1", 0.9),
        Beta2 = o.GetDouble("beta2", 0.999),
        Epsilon = o.GetDouble("eps", 1e-8),
        WeightDecay = o.GetDouble("weight-decay", 0),
        WarmupSteps = o.GetInt("warmup-steps", 0),
        Schedule = o.GetEnum("schedule", ["constant", "linear", "cosine"], "linear") switch
        {
            "constant" => LrSchedule.Constant,
            "cosine" => LrSchedule.Cosine,
            _ => LrSchedule.Linear,
        },
        TotalSteps = steps,
        MinLrRatio = o.GetDouble("min-lr-ratio", 0),
        GradientAccumulationSteps = o.GetInt("gradient-accumulation-steps", 1),
        MaxGradNorm = o.GetDouble("max-grad-norm", 1.0),
        SkipNonFinite = o.GetBool("skip-non-finite", true),
    };

    static PpoOptions ParsePpo(RlftConfig p)
    {
        var d = new PpoOptions();
        return new PpoOptions
        {
            KlCoef = p.GetDouble("kl-coef", d.KlCoef),
            KlEstimator = p.GetEnum("kl-estimator", ["k1", "k2", "k3"], "k1") switch { "k2" => KlEstimator.K2, "k3" => KlEstimator.K3, _ => KlEstimator.K1 },
            AdaptiveKl = p.GetBool("adaptive-kl", d.AdaptiveKl),
            KlTarget = p.GetDouble("kl-target", d.KlTarget),
            KlHorizon = p.GetDouble("kl-horizon", d.KlHorizon),
            RewardClip = p.GetDouble("reward-clip", d.RewardClip),
            Gamma = p.GetDouble("gamma", d.Gamma),
            Lambda = p.GetDouble("lambda", d.Lambda),
            ClipRange = p.GetDouble("clip-range", d.ClipRange),
            ValueClipRange = p.GetDouble("value-clip-range", d.ValueClipRange),
            ValueCoef = p.GetDouble("value-coef", d.ValueCoef),
            EntropyCoef = p.GetDouble("entropy-coef", d.EntropyCoef),
            Epochs = p.GetInt("epochs", d.Epochs),
            MiniBatches = p.GetInt("mini-batches", d.MiniBatches),
            WhitenAdvantages = p.GetBool("whiten-advantages", d.WhitenAdvantages),
        };
    }

    static GrpoOptions ParseGrpo(RlftConfig g)
    {
        var d = new GrpoOptions();
        return new GrpoOptions
        {
            GroupSize = g.GetInt("group-size", d.GroupSize),
            ClipLow = g.GetDouble("clip-low", d.ClipLow),
            ClipHigh = g.GetDouble("clip-high", d.ClipHigh),
            KlCoef = g.GetDouble("kl-coef", d.KlCoef),
            Epochs = g.GetInt("epochs", d.Epochs),
        };
    }

    static DpoOptions ParseDpo(RlftConfig p)
    {
        var d = new DpoOptions();
        return new DpoOptions
        {
            Beta = p.GetDouble("beta", d.Beta),
            LossType = p.GetEnum("loss", ["sigmoid", "ipo"], "sigmoid") == "ipo" ? Losses.DpoLossType.Ipo : Losses.DpoLossType.Sigmoid,
            LabelSmoothing = p.GetDouble("label-smoothing", d.LabelSmoothing),
            PrecomputeReference = p.GetBool("precompute-reference", d.PrecomputeReference),
        };
    }
}
