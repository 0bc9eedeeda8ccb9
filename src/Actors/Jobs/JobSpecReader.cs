using Rlft.Actors.Configuration;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using Rlft.Policy.Training;

namespace Rlft.Actors.Jobs;

/// <summary>
/// Reads <c>rlft.job</c> into a <see cref="JobSpec"/>. Every key is type- and range-checked and unknown keys are
/// refused; reading goes on past a bad value so that one run of the command reports every error, each naming its
/// full key path (<c>rlft.job.stages[2].ppo.gamma: 2 is outside [0, 1]</c>).
/// </summary>
internal static class JobSpecReader
{
    public const string Root = "rlft.job";
    /// <summary>rlft.job.rollout.slots when unset: see <see cref="JobSpec.RolloutSlots"/>.</summary>
    public const int DefaultRolloutSlots = 16;

    static readonly string[] JobKeys = ["name", "seed", "device", "precision", "output-dir", "model", "max-policy-lag", "rollout-workers", "checkpoint-every", "keep-checkpoints", "eval-prompts", "stages", "lora", "max-consecutive-reward-failures", "chat-template", "gradient-checkpointing", "rollout", "learners", "group-check-every", "weight-sync"];
    static readonly string[] RolloutKeys = ["continuous-batching", "slots"];
    static readonly string[] WeightSyncKeys = ["stream-port", "sync-dtype"];
    static readonly string[] LoraKeys = ["rank", "alpha", "dropout", "target-modules"];
    static readonly string[] StageKeys = ["kind", "name", "data", "eval-data", "steps", "batch-size", "optimizer", "ppo", "grpo", "dpo", "reward-model", "distill", "sampling", "rewards", "teacher", "chat-template", "completion-only-loss", "assistant-only-loss", "gradient-checkpointing",
        "replay", "l2-sp", "ewc", "early-stopping", "eval-every", "meta", "adapt", "federated", .. EncoderStageReader.StageKeys];
    static readonly string[] OptimizerKeys = ["kind", "lr", "beta1", "beta2", "eps", "weight-decay", "warmup-steps", "schedule", "min-lr-ratio", "gradient-accumulation-steps", "max-grad-norm", "skip-non-finite", "plateau"];
    static readonly string[] PlateauKeys = ["factor", "patience", "min-lr", "mode", "min-delta"];
    static readonly string[] EarlyStoppingKeys = ["patience", "min-delta"];
    static readonly string[] MetaKeys = ["tasks", "tasks-per-round", "steps", "outer-lr", "inner"];
    static readonly string[] AdaptKeys = ["tasks", "shots"];
    static readonly string[] PpoKeys = ["kl-coef", "kl-estimator", "adaptive-kl", "kl-target", "kl-horizon", "reward-clip", "gamma", "lambda", "clip-range", "value-clip-range", "value-coef", "entropy-coef", "epochs", "mini-batches", "whiten-advantages"];
    static readonly string[] GrpoKeys = ["group-size", "clip-low", "clip-high", "kl-coef", "epochs", "scale-rewards"];
    static readonly string[] DpoKeys = ["beta", "loss", "label-smoothing", "precompute-reference"];
    static readonly string[] RmKeys = ["margin", "center-rewards-coef", "text"];
    static readonly string[] DistillKeys = ["temperature", "on-policy-fraction"];
    static readonly string[] SamplingKeys = ["max-new-tokens", "temperature", "top-k", "top-p"];
    static readonly string[] ModelKeys = ["path", "arch", "preset", "chat-template", "quantize", "double-quant", "compute-dtype", "quantize-skip-modules", "frozen-dtype"];
    static readonly string[] TeacherKeys = ["path", "arch", "preset"];
    static readonly string[] StageKinds = ["sft", "reward-model", "ppo", "dpo", "grpo", "distill", "online-dpo", "meta", "adapt", "classify", "qa"];

    public static JobSpec Parse(RlftConfig c)
    {
        var errors = new ConfigErrors();
        var spec = Parse(c, errors);
        errors.ThrowIfAny();
        return spec;
    }

    /// <summary>
    /// Reads as much as can be read, recording every error in <paramref name="errors"/>; where a value is bad the
    /// spec holds a default, so it is only good for checking the parts whose keys had no error.
    /// </summary>
    public static JobSpec Parse(RlftConfig c, ConfigErrors errors)
    {
        if (!c.Has(Root)) throw new ConfigException($"{Root}: missing (a job file defines rlft.job {{ ... }}) in {c.Source}");
        errors.Check(() => c.RejectUnknownKeys(Root, JobKeys));
        errors.Check(() => c.RejectUnknownKeys($"{Root}.model", ModelKeys));
        errors.Check(() => c.RejectUnknownKeys($"{Root}.rollout", RolloutKeys));
        errors.Check(() => c.RejectUnknownKeys($"{Root}.weight-sync", WeightSyncKeys));
        var stages = errors.Read(() => c.GetObjectList($"{Root}.stages"), []);
        if (stages.Count == 0 && !errors.All.Any(e => e.StartsWith($"{Root}.stages", StringComparison.Ordinal)))
            errors.Add($"{Root}.stages: a job needs at least one stage (in {c.Source})");
        string name = errors.Read(() => c.GetString($"{Root}.name"), "job");
        if (name.Length == 0 || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.Contains(".."))
            errors.Add($"{Root}.name: '{name}' is not usable as a directory name");
        // The job's setting is every stage's default; a stage may override it.
        bool checkpointing = errors.Read(() => c.GetBool($"{Root}.gradient-checkpointing", false), false);
        var parsedStages = stages.Select((s, i) => ParseStage(s, i, errors, checkpointing)).ToList();
        parsedStages = StageSequence.Check(parsedStages, errors);
        var quantization = errors.Read(() => ParseQuantization(c, $"{Root}.model"), new QuantizationOptions());
        var lora = errors.Read(() => ParseLora(c, parsedStages, quantization.Enabled), null);
        foreach (var problem in errors.Read(() => QuantizationConflicts(c, quantization, lora, parsedStages).ToList(), [])) errors.Add(problem);
        string outputDir = errors.Read(() => c.GetString($"{Root}.output-dir", "runs"), "runs");
        if (outputDir.Length == 0) errors.Add($"{Root}.output-dir: must not be empty");
        var spec = new JobSpec
        {
            Lora = lora,
            Name = name,
            Seed = errors.Read(() => c.GetInt($"{Root}.seed", 0, min: 0), 0),
            Device = errors.Read(() => c.GetEnum($"{Root}.device", ["auto", "cpu", "cuda"], "auto"), "auto"),
            Precision = errors.Read(() => c.GetEnum($"{Root}.precision", ["auto", "fp32", "bf16"], "auto"), "auto") switch { "fp32" => Precision.Fp32, "bf16" => Precision.Bf16, _ => Precision.Auto },
            OutputRoot = outputDir,
            Model = errors.Read(() => ParseModel(c, $"{Root}.model"), new ModelSpec(null, "gpt2", "tiny")) with
            {
                Quantization = quantization,
                FrozenDtype = errors.Read(() => ParseFrozenDtype(c, quantization), TorchSharp.torch.ScalarType.Float32),
            },
            MaxPolicyLag = errors.Read(() => c.GetInt($"{Root}.max-policy-lag", 1, min: 0, max: 16), 1),
            RolloutWorkers = errors.Read(() => c.GetInt($"{Root}.rollout-workers", 1, min: 1, max: 64), 1),
            Learners = errors.Read(() => LearnersReader.Read(c), 1),
            GroupCheckEvery = errors.Read(() => c.GetInt($"{Root}.group-check-every", LearnersReader.DefaultCheckEvery, min: 0), LearnersReader.DefaultCheckEvery),
            RolloutSlots = errors.Read(() => c.GetBool($"{Root}.rollout.continuous-batching", true)
                ? c.GetInt($"{Root}.rollout.slots", DefaultRolloutSlots, min: 1, max: 4096) : 0, DefaultRolloutSlots),
            WeightStreamPort = errors.Read(() => c.GetInt($"{Root}.weight-sync.stream-port", 0, min: -1, max: 65535), 0),
            SyncBf16 = errors.Read(() => c.GetEnum($"{Root}.weight-sync.sync-dtype", ["fp32", "bf16"], "fp32"), "fp32") == "bf16",
            CheckpointEvery = errors.Read(() => c.GetInt($"{Root}.checkpoint-every", 0, min: 0), 0),
            KeepCheckpoints = errors.Read(() => c.GetInt($"{Root}.keep-checkpoints", 0, min: 0), 0),
            EvalPrompts = errors.Read(() => c.GetInt($"{Root}.eval-prompts", 64, min: 1, max: 100_000), 64),
            MaxConsecutiveRewardFailures = errors.Read(() => c.GetInt($"{Root}.max-consecutive-reward-failures", 3, min: 1, max: 1000), 3),
            Stages = parsedStages,
            ChatTemplate = errors.Read(() => TemplateKey(c, $"{Root}.chat-template"), null),
            Source = c,
            Feedback = c.Has("rlft.feedback")
                ? errors.Read(() => Rlft.Actors.Feedback.FeedbackOptions.FromConfig(c, defaultJournal: Path.Combine(outputDir, name, "feedback.db")), null)
                : null,
        };
        // What a learner group cannot run yet, and batches too small to share, once the stages are known.
        if (spec.Learners > 1 && !errors.All.Any(e => e.StartsWith($"{Root}.stages", StringComparison.Ordinal) || e.StartsWith($"{Root}.lora", StringComparison.Ordinal)))
            foreach (var problem in LearnersReader.Conflicts(spec)) errors.Add(problem);
        return spec;
    }

    static Rlft.Policy.Lora.LoraConfig? ParseLora(RlftConfig c, IReadOnlyList<StageSpec> stages, bool quantizedBase)
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
            // Every attention projection of every family (GPT-2 c_attn/c_proj, q/k/v/o_proj, Phi-3 fused qkv_proj).
            TargetModules = c.GetStringList($"{at}.target-modules", ["c_attn", "c_proj", "q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj"]),
        };
        if (config.TargetModules.Count == 0) throw new ConfigException($"{at}.target-modules: at least one module name is needed (in {c.Source})");
        // A quantized base is frozen from the start: every stage trains these adapters, in any order.
        if (quantizedBase) return config;
        // The adapters attach when the first online or federated stage begins (a federated stage's clients train them too);
        // in a job with neither (SFT and/or DPO) they attach at the start and every stage trains them, as on a quantized base.
        int? firstOnline = stages.FirstOrDefault(s => s.IsOnline || s.Federated is not null)?.Index;
        if (firstOnline is null)
        {
            var rm = stages.FirstOrDefault(s => s.Kind == StageKind.RewardModel && !s.TrainsEncoder);
            if (rm is not null)
                throw new ConfigException($"{Root}.stages[{rm.Index}]: a reward-model stage trains a full copy of the policy's weights, and with {at} in a job with no online or federated stage the adapters attach at the start (the base is frozen); train the reward model in a job without {at}");
            return config;
        }
        var later = stages.FirstOrDefault(s => s.Index > firstOnline && s.Federated is null && s.Kind is StageKind.Sft or StageKind.Dpo or StageKind.Distill);
        if (later is not null)
            throw new ConfigException($"{Root}.stages[{later.Index}]: a {later.Name} stage cannot follow a LoRA stage (the base weights are frozen from stage {firstOnline} on); move it before, or drop {at}");
        return config;
    }

    /// <summary>
    /// <c>model { quantize = nf4 | int8 | none, double-quant = on | off, compute-dtype = auto | bf16 | fp32,
    /// quantize-skip-modules = [...] }</c>; the settings other than quantize are refused when nothing is quantized,
    /// double-quant = on with int8 (it concerns NF4's block scales).
    /// </summary>
    static QuantizationOptions ParseQuantization(RlftConfig c, string at)
    {
        var defaults = new QuantizationOptions();
        var kind = c.GetEnum($"{at}.quantize", ["none", "nf4", "int8"], "none") switch
        {
            "nf4" => QuantizationKind.Nf4,
            "int8" => QuantizationKind.Int8,
            _ => QuantizationKind.None,
        };
        string[] detail = ["double-quant", "compute-dtype", "quantize-skip-modules"];
        if (kind == QuantizationKind.None && detail.FirstOrDefault(k => c.Has($"{at}.{k}")) is { } stray)
            throw new ConfigException($"{at}.{stray}: applies to a quantized base, and {at}.quantize is none (in {c.Source})");
        if (kind == QuantizationKind.Int8 && c.Has($"{at}.double-quant") && c.GetBool($"{at}.double-quant"))
            throw new ConfigException($"{at}.double-quant: double quantization compresses NF4's block scales; int8 has one scale per row (set it off or drop it) (in {c.Source})");
        var skip = c.GetStringList($"{at}.quantize-skip-modules", defaults.SkipModules);
        if (skip.Any(string.IsNullOrWhiteSpace)) throw new ConfigException($"{at}.quantize-skip-modules: module names must not be empty (in {c.Source})");
        return new QuantizationOptions
        {
            Kind = kind,
            DoubleQuant = kind == QuantizationKind.Nf4 && c.GetBool($"{at}.double-quant", true),
            ComputeDtype = c.GetEnum($"{at}.compute-dtype", ["auto", "bf16", "fp32"], "auto") switch
            {
                "bf16" => TorchSharp.torch.ScalarType.BFloat16,
                "fp32" => TorchSharp.torch.ScalarType.Float32,
                _ => null,
            },
            SkipModules = skip,
        };
    }

    /// <summary>
    /// <c>model.frozen-dtype = fp32 | bf16</c> (default fp32); bf16 is refused with a quantized base, whose projections
    /// are 4 or 8 bits already and whose compute dtype is its own key.
    /// </summary>
    static TorchSharp.torch.ScalarType ParseFrozenDtype(RlftConfig c, QuantizationOptions quantization)
    {
        const string key = Root + ".model.frozen-dtype";
        bool bf16 = c.GetEnum(key, ["fp32", "bf16"], "fp32") == "bf16";
        if (bf16 && quantization.Enabled)
            throw new ConfigException($"{key}: a {QuantizationOptions.KindName(quantization.Kind)} base is frozen in 4 or 8 bits already (the reference is the base itself); set {Root}.model.compute-dtype = bf16 for bf16 compute (in {c.Source})");
        return bf16 ? TorchSharp.torch.ScalarType.BFloat16 : TorchSharp.torch.ScalarType.Float32;
    }

    /// <summary>What a quantized base cannot be combined with, each naming the key at fault.</summary>
    static IEnumerable<string> QuantizationConflicts(RlftConfig c, QuantizationOptions q, Rlft.Policy.Lora.LoraConfig? lora, IReadOnlyList<StageSpec> stages)
    {
        if (!q.Enabled) yield break;
        string kind = QuantizationOptions.KindName(q.Kind);
        if (lora is null && !c.Has($"{Root}.lora"))
            yield return $"{Root}.model.quantize: a {kind} base is frozen, so the job trains LoRA adapters on it: add rlft.job.lora {{ ... }} (in {c.Source})";
        foreach (var stage in stages.Where(s => s.Kind == StageKind.RewardModel))
            yield return $"{Root}.stages[{stage.Index}]: a reward-model stage trains a full copy of the policy's weights, which a {kind} base (rlft.job.model.quantize) does not have; train the reward model in a job without quantize";
        if (c.Has($"{Root}.precision") && c.GetString($"{Root}.precision") == "bf16")
            yield return $"{Root}.precision: bf16 mixed precision keeps fp32 master weights, which a {kind} base does not have; set rlft.job.model.compute-dtype = bf16 instead";
    }

    static ModelSpec ParseModel(RlftConfig c, string at)
    {
        string? path = c.Has($"{at}.path") ? c.GetString($"{at}.path") : null;
        if (path is { Length: 0 }) throw new ConfigException($"{at}.path: must not be empty");
        string? template = c.Has($"{at}.chat-template") ? c.GetEnum($"{at}.chat-template", Rlft.Policy.Chat.BuiltinChatTemplates.Names) : null;
        if (template is not null && path is not null)
            throw new ConfigException($"{at}.chat-template: names the built-in template an init model is made with; a checkpoint has its own (override it with {Root}.chat-template = FILE)");
        string preset = c.GetEnum($"{at}.preset", ModelPresets.Presets, "tiny");
        string? arch = c.Has($"{at}.arch") ? c.GetEnum($"{at}.arch", ModelPresets.Architectures) : null;
        // A published shape (qwen2-0.5b, …) is of one architecture; the sizes default to gpt2.
        try { return new ModelSpec(path, ModelPresets.ResolveArchitecture(arch ?? (PublishedShapes.IsPublished(preset) ? null : "gpt2"), preset), preset, template); }
        catch (ArgumentException e) { throw new ConfigException($"{at}.arch: {e.Message}"); }
    }

    /// <summary>A chat-template key: a Jinja file or builtin:NAME (the file itself is checked by the validator).</summary>
    static string? TemplateKey(RlftConfig c, string key)
    {
        if (!c.Has(key)) return null;
        string value = c.GetString(key);
        if (value.Length == 0) throw new ConfigException($"{key}: must not be empty (a Jinja file, or builtin:{Rlft.Policy.Chat.BuiltinChatTemplates.Names[0]})");
        return value;
    }

    /// <summary>One stage; each of its fields is read on its own so that every bad one is reported.</summary>
    static StageSpec ParseStage(RlftConfig s, int index, ConfigErrors errors, bool jobCheckpointing)
    {
        string at = $"{Root}.stages[{index}]";
        T Read<T>(Func<T> read, T fallback) => errors.Read(() => Wrap(at, read), fallback);
        Read(() => { s.RejectUnknownKeys("", StageKeys); return 0; }, 0);
        string kindName = Read(() => s.GetEnum("kind", StageKinds), "sft");
        var kind = kindName switch
        {
            "sft" => StageKind.Sft,
            "reward-model" => StageKind.RewardModel,
            "ppo" => StageKind.Ppo,
            "dpo" => StageKind.Dpo,
            "grpo" => StageKind.Grpo,
            "online-dpo" => StageKind.OnlineDpo,
            "meta" => StageKind.Meta,
            "adapt" => StageKind.Adapt,
            "classify" => StageKind.Classify,
            "qa" => StageKind.Qa,
            _ => StageKind.Distill,
        };
        foreach (var (section, keys) in new[] { ("optimizer", OptimizerKeys), ("ppo", PpoKeys), ("grpo", GrpoKeys), ("dpo", DpoKeys), ("reward-model", RmKeys), ("distill", DistillKeys), ("sampling", SamplingKeys), ("teacher", TeacherKeys),
                     ("optimizer.plateau", PlateauKeys), ("early-stopping", EarlyStoppingKeys), ("meta", MetaKeys), ("adapt", AdaptKeys),
                     ("federated", FederatedReader.Keys), ("federated.privacy", FederatedReader.PrivacyKeys) })
            Read(() => { s.RejectUnknownKeys(section, keys); return 0; }, 0);
        // A federated stage's steps are its rounds.
        bool federated = s.Has("federated");
        if (federated && s.Has("steps")) errors.Add($"{at}.steps: a federated stage counts rounds (federated.rounds), not steps");
        int steps = Read(() => federated ? s.GetInt("federated.rounds", min: 1) : s.GetInt("steps", min: 1), 1);
        foreach (var lossKey in new[] { "completion-only-loss", "assistant-only-loss" })
            if (s.Has(lossKey) && kind is not (StageKind.Sft or StageKind.Distill))
                errors.Add($"{at}.{lossKey}: applies to sft and distill stages (a {kindName} stage's loss covers the completions it compares or samples)");
        bool familyStage = kind is StageKind.Meta or StageKind.Adapt;
        var federatedSpec = Read(() => FederatedReader.Read(s, kind, kindName), null);
        string data = familyStage || federated ? "" : Read(() => s.GetString("data"), "");
        if (!familyStage && s.Has("data") && data.Length == 0) errors.Add($"{at}.data: must not be empty");
        foreach (var dataKey in new[] { "data", "eval-data" }.Where(k => familyStage && s.Has(k)))
            errors.Add($"{at}.{dataKey}: a {kindName} stage trains and evaluates on its tasks' data ({kindName}.tasks), not on a dataset");

        var stage = new StageSpec
        {
            Index = index,
            Kind = kind,
            Name = Read(() => s.GetString("name", $"{index}-{kindName}"), $"{index}-{kindName}"),
            Data = data,
            EvalData = Read(() => s.Has("eval-data") ? s.GetString("eval-data") : null, null),
            Steps = steps,
            BatchSize = Read(() => s.GetInt("batch-size", 16, min: 1, max: 4096), 16),
            Optimizer = Read(() => ParseOptimizer(s, steps, kind).Validate($"{at}.optimizer"), new OptimizerOptions()),
            Ppo = Read(() => ParsePpo(s.Section("ppo")).Validate($"{at}.ppo"), new PpoOptions()),
            Grpo = Read(() => ParseGrpo(s.Section("grpo")).Validate($"{at}.grpo"), new GrpoOptions()),
            Dpo = Read(() => ParseDpo(s.Section("dpo")).Validate($"{at}.dpo"), new DpoOptions()),
            RewardModel = Read(() => new RewardModelOptions
            {
                Margin = s.GetDouble("reward-model.margin", 0),
                CenterRewardsCoef = s.GetDouble("reward-model.center-rewards-coef", 0),
            }.Validate($"{at}.reward-model"), new RewardModelOptions()),
            Distill = Read(() => new DistillOptions
            {
                Temperature = s.GetDouble("distill.temperature", 1.0),
                OnPolicyFraction = s.GetDouble("distill.on-policy-fraction", 0),
            }.Validate($"{at}.distill"), new DistillOptions()),
            Sampling = Read(() => new SamplingSpec(
                s.GetInt("sampling.max-new-tokens", 16, min: 1, max: 4096),
                s.GetDouble("sampling.temperature", 1.0, min: 0, max: 100),
                s.GetInt("sampling.top-k", 0, min: 0),
                s.GetDouble("sampling.top-p", 1.0, min: 0, max: 1)), new SamplingSpec(16, 1.0, 0, 1.0)),
            Rewards = Read(() => s.Has("rewards") ? s.Section("rewards") : null, null),
            Config = s,
            Teacher = Read(() => s.Has("teacher") ? ParseModel(s, "teacher") : null, null),
            ChatTemplate = Read(() => TemplateKey(s, "chat-template"), null),
            CompletionOnlyLoss = Read(() => s.GetBool("completion-only-loss", true), true),
            AssistantOnlyLoss = Read(() => s.GetBool("assistant-only-loss", true), true),
            GradientCheckpointing = Read(() => s.GetBool("gradient-checkpointing", jobCheckpointing), jobCheckpointing),
            Replay = Read(() => StageTuningReader.Replay(s, kind, kindName), 0),
            L2Sp = Read(() => StageTuningReader.PenaltyWeight(s, "l2-sp", kind, kindName), 0),
            Ewc = Read(() => StageTuningReader.PenaltyWeight(s, "ewc", kind, kindName), 0),
            EarlyStopping = Read(() => StageTuningReader.EarlyStopping(s, kind, kindName), null),
            EvalEvery = Read(() => StageTuningReader.EvalEvery(s, kind, kindName, steps), 0),
            Meta = familyStage && kind == StageKind.Meta ? Read(() => StageTuningReader.ReadMeta(s), null) : null,
            Adapt = familyStage && kind == StageKind.Adapt ? Read(() => StageTuningReader.ReadAdapt(s), null) : null,
            Encoder = Read(() => EncoderStageReader.Read(s, kind, kindName), EncoderStageReader.IsEncoderStage(s, kind) ? new EncoderStageSpec() : null),
            Federated = federatedSpec,
        };
        return stage with { Optimizer = stage.Optimizer with { TotalSteps = OptimizerUpdates(stage) } };
    }

    /// <summary>
    /// The optimizer updates a stage makes, which the learning-rate schedule spans (warmup and decay count updates, as
    /// in transformers): a PPO step makes epochs × mini-batches of them, a GRPO step one per epoch, every other step
    /// one; gradient accumulation makes one update of that many micro-batches.
    /// </summary>
    internal static int OptimizerUpdates(StageSpec stage)
    {
        long perStep = stage.Kind switch
        {
            StageKind.Ppo => (long)stage.Ppo.Epochs * stage.Ppo.MiniBatches,
            StageKind.Grpo => stage.Grpo.Epochs,
            _ => 1,
        };
        long microSteps = stage.Steps * perStep;
        int accumulation = Math.Max(1, stage.Optimizer.GradientAccumulationSteps);
        return (int)Math.Clamp((microSteps + accumulation - 1) / accumulation, 1, int.MaxValue);
    }

    static T Wrap<T>(string at, Func<T> read)
    {
        try { return read(); }
        catch (ConfigException e) { throw new ConfigException(e.Errors.Select(m => Rename(m, at)).ToList()); }
        catch (OptionException e) { throw new ConfigException(e.Message); }
    }

    // Errors inside a stage name the stage's full path: rlft.job.stages[2].ppo.gamma.
    static string Rename(string msg, string at)
    {
        int paren = msg.LastIndexOf(" (in ", StringComparison.Ordinal);
        if (paren > 0) msg = msg[..paren];
        return msg.StartsWith(Root, StringComparison.Ordinal) ? msg : $"{at}.{msg}";
    }

    /// <summary>
    /// The stage's optimizer section. <c>schedule = plateau</c> reads its <c>plateau { factor, patience, min-lr, mode,
    /// min-delta }</c> (mode defaults to min, the held-out loss, for offline stages and to max, the held-out reward, for
    /// online ones); a plateau section with another schedule is refused. Plateau keys are read from the stage
    /// (<paramref name="s"/>) so that errors name their full path.
    /// </summary>
    static OptimizerOptions ParseOptimizer(RlftConfig s, int steps, StageKind kind)
    {
        string scheduleName = s.GetEnum("optimizer.schedule", ["constant", "linear", "cosine", "plateau"], "linear");
        var schedule = scheduleName switch
        {
            "constant" => LrSchedule.Constant,
            "cosine" => LrSchedule.Cosine,
            "plateau" => LrSchedule.Plateau,
            _ => LrSchedule.Linear,
        };
        if (schedule != LrSchedule.Plateau && s.Has("optimizer.plateau"))
            throw new ConfigException($"optimizer.plateau: applies to schedule = plateau, and the schedule is {scheduleName}");
        var d = new PlateauOptions();
        bool online = kind is StageKind.Ppo or StageKind.Grpo or StageKind.OnlineDpo;
        var plateau = schedule != LrSchedule.Plateau ? d : new PlateauOptions
        {
            Factor = s.GetDouble("optimizer.plateau.factor", d.Factor),
            Patience = s.GetInt("optimizer.plateau.patience", d.Patience),
            MinLr = s.GetDouble("optimizer.plateau.min-lr", d.MinLr),
            Mode = s.GetEnum("optimizer.plateau.mode", ["min", "max"], online ? "max" : "min") == "max" ? MetricMode.Max : MetricMode.Min,
            MinDelta = s.GetDouble("optimizer.plateau.min-delta", d.MinDelta),
        };
        var optimizerKind = s.GetEnum("optimizer.kind", ["adamw", "adamw-8bit"], "adamw") == "adamw-8bit" ? OptimizerKind.AdamW8bit : OptimizerKind.AdamW;
        return ParseOptimizer(s.Section("optimizer"), steps) with { Kind = optimizerKind, Schedule = schedule, Plateau = plateau };
    }

    static OptimizerOptions ParseOptimizer(RlftConfig o, int steps) => new()
    {
        LearningRate = o.GetDouble("lr", 1e-4),
        Beta1 = o.GetDouble("beta1", 0.9),
        Beta2 = o.GetDouble("beta2", 0.999),
        Epsilon = o.GetDouble("eps", 1e-8),
        WeightDecay = o.GetDouble("weight-decay", 0),
        WarmupSteps = o.GetInt("warmup-steps", 0),
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
            ScaleRewards = g.GetBool("scale-rewards", d.ScaleRewards),
        };
    }

    static DpoOptions ParseDpo(RlftConfig p)
    {
        var d = new DpoOptions();
        return new DpoOptions
        {
            Beta = p.GetDouble("beta", d.Beta),
            LossType = p.GetEnum("loss", ["sigmoid", "ipo"], "sigmoid") == "ipo" ? DpoLossType.Ipo : DpoLossType.Sigmoid,
            LabelSmoothing = p.GetDouble("label-smoothing", d.LabelSmoothing),
            PrecomputeReference = p.GetBool("precompute-reference", d.PrecomputeReference),
        };
    }
}
