using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using Rlft.Reward;
using Rlft.Reward.Sources;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Jobs;

/// <summary>What a node will do with a job, and so what must be checked before it starts.</summary>
[Flags]
public enum JobParts
{
    None = 0,
    /// <summary>Model directories, datasets, the output directory: what the learner reads and writes.</summary>
    Learner = 1,
    /// <summary>Reward specs: what reward actors build.</summary>
    Rewards = 2,
    All = Learner | Rewards,
}

/// <summary>
/// Checks everything a job will read or write before anything starts: model directories (config, the weights'
/// names and shapes from the safetensors headers, the tokenizer against the vocabulary), every stage's datasets
/// (each line, with file:line), reward specs, the output directory and the feedback settings. It reads only:
/// nothing is created or changed. Every problem is one line naming the key path and the file or line at fault.
/// </summary>
public static partial class JobValidator
{
    const string Root = JobSpecReader.Root;

    /// <summary>
    /// Every problem found (empty: the job can start). <paramref name="failed"/> says which key paths already failed
    /// to read (their values are placeholders, so what depends on them is not checked again).
    /// </summary>
    public static List<string> Check(JobSpec job, JobParts parts = JobParts.All, Func<string, bool>? failed = null)
    {
        failed ??= _ => false;
        var problems = new List<string>();
        var stages = job.Stages.Where(s => !failed($"{Root}.stages[{s.Index}]")).ToList();
        foreach (var stage in stages) problems.AddRange(NotRunYet(stage));
        foreach (var stage in stages.Where(s => s.Federated is not null)) problems.AddRange(CheckFederated(job, stage));
        if (parts.HasFlag(JobParts.Learner))
        {
            if (!failed($"{Root}.output-dir") && !failed($"{Root}.name")) problems.AddRange(CheckOutput(job));
            var modelConfig = failed($"{Root}.model") ? null : CheckModel(job, stages, problems);
            bool? modelTemplate = CheckTemplates(job, stages, modelKnown: !failed($"{Root}.model") && (job.Model.Path is null || modelConfig is not null), failed, problems);
            foreach (var stage in stages)
                problems.AddRange(stage.TrainsEncoder ? CheckEncoderStage(stage)
                    : CheckStageData(stage, hasTemplate: job.ChatTemplateFor(stage) is not null || modelTemplate != false, initModel: job.Model.Path is null));
            if (job.Lora is { } lora && modelConfig is not null) problems.AddRange(CheckLoraTargets(lora.TargetModules, modelConfig));
            if (job.QuantizedBase && modelConfig is not null) problems.AddRange(CheckQuantizeSkip(job.Model.Quantization, modelConfig));
        }
        if (parts.HasFlag(JobParts.Rewards))
            foreach (var stage in stages.Where(s => s.IsOnline)) problems.AddRange(CheckRewards(job, stage));
        return problems;
    }

    // ---- keys the learner does not run yet ------------------------------------------------------------

    /// <summary>
    /// Stage settings the job reader accepts and checks but the learner does not apply yet: each is refused, so that
    /// no job runs without what it asked for (SFT stages apply them all). Remove an entry when every stage kind applies it.
    /// </summary>
    internal static readonly IReadOnlyList<(string Key, Func<StageSpec, bool> Set)> NotRunYetKeys =
    [
        ("replay", s => s.Replay > 0),
        ("l2-sp", s => s.L2Sp > 0),
        ("ewc", s => s.Ewc > 0),
        ("early-stopping", s => s.EarlyStopping is not null),
        ("optimizer.schedule", s => s.Optimizer.Schedule == Rlft.Policy.Training.LrSchedule.Plateau),
        ("eval-every", s => s.EvalEvery > 0),
    ];

    static IEnumerable<string> NotRunYet(StageSpec stage)
    {
        string at = $"{Root}.stages[{stage.Index}]";
        // SFT stages apply them all; the other stage kinds not yet.
        if (stage.Kind == StageKind.Sft) yield break;
        foreach (var (key, set) in NotRunYetKeys.Where(k => k.Set(stage)))
        {
            string what = key switch
            {
                "optimizer.schedule" => "schedule = plateau is",
                _ => $"{key} is",
            };
            yield return $"{at}.{key}: {what} not supported yet in {stage.Kind} stages (sft stages apply it)";
        }
    }

    /// <summary>What a federated stage needs that the cluster does not carry (yet), each refused with its key path.</summary>
    static IEnumerable<string> CheckFederated(JobSpec job, StageSpec stage)
    {
        string at = $"{Root}.stages[{stage.Index}]";
        var spec = stage.Federated!;
        if (stage.Kind == StageKind.RewardModel && stage.TrainsEncoder)
            yield return $"{at}.federated: a federated reward-model stage trains the causal-LM reward model (a scalar head on a copy of the policy); an encoder reward model (encoder {{ … }}) is not federated";
        if (stage.EvalData is null)
            yield return $"{at}.eval-data: a federated stage measures its held-out figures before and after on eval-data (its training data is on the clients); name a held-out file or a builtin: dataset";
        // Clients load the job's model as it is on disk and attach the adapters to it: the server's base must be that model.
        if (job.Lora is not null && job.Stages.Take(stage.Index).FirstOrDefault(s => s.Federated is null && !s.IsOnline) is { } earlier)
            yield return $"{at}.federated: with rlft.job.lora the clients' adapters apply on the job's model as loaded, but stage {earlier.Index} ({earlier.Kind}) trains on the server first; put the federated stages first, or train without lora";
        if (job.QuantizedBase)
            yield return $"{Root}.model.quantize: a federated stage exchanges fp32 weights; a quantized base is not supported with federated stages";
    }

    // ---- output directory -------------------------------------------------------------------------

    static IEnumerable<string> CheckOutput(JobSpec job)
    {
        string runDir = Path.GetFullPath(job.RunDirectory);
        if (File.Exists(runDir)) { yield return $"{Root}.output-dir: {runDir} is a file, not a directory"; yield break; }
        // The nearest folder that exists is where the run directory will be created (or is).
        string? existing = runDir;
        while (existing is not null && !Directory.Exists(existing))
        {
            if (File.Exists(existing)) { yield return $"{Root}.output-dir: cannot create {runDir}: {existing} is a file"; yield break; }
            existing = Path.GetDirectoryName(existing);
        }
        if (existing is null) { yield return $"{Root}.output-dir: cannot create {runDir}"; yield break; }
        if (!Writable(existing)) yield return $"{Root}.output-dir: cannot create {runDir}: {existing} is not writable (permission denied or a read-only file system)";
        if (job.Feedback is { } feedback)
        {
            string journalDir = Path.GetDirectoryName(Path.GetFullPath(feedback.Journal))!;
            if (!journalDir.StartsWith(runDir, StringComparison.Ordinal))
            {
                string? near = journalDir;
                while (near is not null && !Directory.Exists(near)) near = Path.GetDirectoryName(near);
                if (near is null || !Writable(near)) yield return $"rlft.feedback.journal: cannot write {feedback.Journal}";
            }
        }
    }

    /// <summary>
    /// Whether this process can create the run directory inside <paramref name="directory"/>. Permission bits do not
    /// tell (root passes every check, /proc and read-only mounts refuse anyway), so a uniquely named folder is created
    /// and removed again: the one write validation makes, and never inside the run directory's own contents.
    /// </summary>
    static bool Writable(string directory)
    {
        string probe = Path.Combine(directory, $".rlft-write-check-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(probe);
            Directory.Delete(probe);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    // ---- models -----------------------------------------------------------------------------------

    /// <summary>The policy's config when it is known before the job runs (a model directory, or an init preset).</summary>
    static ModelConfig? CheckModel(JobSpec job, IEnumerable<StageSpec> stages, List<string> problems)
    {
        ModelConfig? config = null;
        if (job.Model.Path is { } path)
        {
            var found = ModelDirectory.Check(path, out config);
            problems.AddRange(found.Select(p => $"{Root}.model.path: {p}"));
            if (found.Count > 0) config = null;
        }
        else config = ModelPresets.Shape(job.Model.Arch, job.Model.Preset);
        foreach (var stage in stages.Where(s => s.Kind == StageKind.Distill))
        {
            string at = $"{Root}.stages[{stage.Index}].teacher";
            if (stage.Teacher?.Path is not { } teacher) { problems.Add($"{at}.path: distillation needs a teacher checkpoint"); continue; }
            var found = ModelDirectory.Check(teacher, out var teacherConfig);
            problems.AddRange(found.Select(p => $"{at}.path: {p}"));
            if (teacherConfig is not null && config is not null && teacherConfig.VocabSize != config.VocabSize)
                problems.Add($"{at}.path: the teacher's vocab_size is {teacherConfig.VocabSize}, the student's {config.VocabSize}: distillation compares their distributions token by token, so they must share a vocabulary");
        }
        return config;
    }

    static IEnumerable<string> CheckLoraTargets(IReadOnlyList<string> targets, ModelConfig config)
    {
        using var model = ModelFactory.CreateMeta(config);
        var dense = model.named_modules().Where(m => m.module is Dense).Select(m => m.name.Split('.')[^1]).ToHashSet();
        if (!targets.Any(dense.Contains))
            yield return $"{Root}.lora.target-modules: none of [{string.Join(", ", targets)}] is a projection of this {config.ModelType} model (its projections: {string.Join(", ", dense.Order())})";
    }

    /// <summary>Every name in quantize-skip-modules is a projection of the model (lm_head, the default, may be absent when tied), and some projection is left to quantize.</summary>
    static IEnumerable<string> CheckQuantizeSkip(Rlft.Policy.Quantization.QuantizationOptions options, ModelConfig config)
    {
        const string at = $"{Root}.model.quantize-skip-modules";
        using var model = ModelFactory.CreateMeta(config);
        var dense = model.DenseLayers().Select(d => d.Name).ToList();
        var lastNames = dense.Select(n => n.Split('.')[^1]).ToHashSet();
        foreach (var name in options.SkipModules.Where(n => n != "lm_head" && !lastNames.Contains(n) && !dense.Contains(n)))
            yield return $"{at}: '{name}' is not a projection of this {config.ModelType} model (its projections: {string.Join(", ", lastNames.Order())})";
        if (!dense.Any(options.Quantizes))
            yield return $"{at}: [{string.Join(", ", options.SkipModules)}] keeps every projection of this {config.ModelType} model in full precision: nothing would be quantized";
    }

    // ---- chat templates -----------------------------------------------------------------------------

    /// <summary>
    /// Checks that every template override (the job's, each stage's) exists and parses, and whether the model has a
    /// template of its own: true or false, or null when that is unknown (the model directory has problems already
    /// reported).
    /// </summary>
    static bool? CheckTemplates(JobSpec job, IEnumerable<StageSpec> stages, bool modelKnown, Func<string, bool> failed, List<string> problems)
    {
        var overrides = new List<(string Key, string? Value)> { ($"{Root}.chat-template", job.ChatTemplate) };
        overrides.AddRange(stages.Select(s => ($"{Root}.stages[{s.Index}].chat-template", s.ChatTemplate)));
        foreach (var (key, value) in overrides.Where(o => o.Value is not null && !failed(o.Key)))
        {
            try
            {
                var (source, origin) = BuiltinChatTemplates.Read(value!);
                ChatTemplate.FromSource(source, origin: origin);
            }
            catch (ChatTemplateException e) { problems.Add($"{key}: {e.Message}"); }
        }
        if (job.Model.Path is not { } path) return job.Model.ChatTemplate is not null;
        if (!modelKnown) return null;
        try { return ChatTemplate.TryLoad(path) is not null; }
        catch (ChatTemplateException e)
        {
            problems.Add($"{Root}.model.path: {e.Message}");
            return null;
        }
    }

    // ---- datasets ---------------------------------------------------------------------------------

    static IEnumerable<string> CheckStageData(StageSpec stage, bool hasTemplate, bool initModel)
    {
        string at = $"{Root}.stages[{stage.Index}]";
        // Their data is the built-in family's, named by their tasks (checked by the job reader).
        if (stage.Kind is StageKind.Meta or StageKind.Adapt)
            return [];
        // A federated stage's training data is on its clients; only held-out data can be checked here.
        if (stage.Federated is not null)
            return stage.EvalData is { } heldOut
                ? CheckDataset(heldOut, stage.Kind == StageKind.Sft ? DataKind.Sft : DataKind.Preferences, $"{at}.eval-data", hasTemplate, at, initModel)
                : [];
        var kind = stage.Kind switch
        {
            StageKind.Sft or StageKind.Distill => DataKind.Sft,
            StageKind.RewardModel or StageKind.Dpo => DataKind.Preferences,
            _ => DataKind.Prompts,
        };
        var problems = CheckDataset(stage.Data, kind, $"{at}.data", hasTemplate, at, initModel).ToList();
        if (stage.EvalData is { } eval)
            problems.AddRange(CheckDataset(eval, stage.IsOnline ? DataKind.Prompts : kind, $"{at}.eval-data", hasTemplate, at, initModel));
        return problems;
    }

    /// <summary>
    /// Every line of a dataset checked in the stage's TRL formats (file:line: field: problem, the first ten and then
    /// how many more), and conversational data refused when there is no chat template to render it.
    /// </summary>
    static IEnumerable<string> CheckDataset(string data, DataKind kind, string key, bool hasTemplate, string stageKey, bool initModel)
    {
        bool conversational;
        if (data.StartsWith("builtin:", StringComparison.Ordinal))
        {
            string name = data["builtin:".Length..];
            if (DataResolver.BuiltinProblem(name) is { } problem) return [$"{key}: {problem}"];
            if (DataResolver.IsEncoderBuiltin(name)) return [$"{key}: builtin:{name} is data for encoder stages (classify, qa), not for the policy's stages"];
            conversational = DataResolver.IsConversational(name);
        }
        else
        {
            var (errors, chat) = DatasetFormats.Scan(data, kind, limit: 10);
            if (errors.Count > 0) return errors.Select(p => $"{key}: {p}");
            conversational = chat;
        }
        if (!conversational || hasTemplate) return [];
        string remedy = initModel
            ? $"make the model with one (rlft.job.model.chat-template = {BuiltinChatTemplates.Names[0]}) or give one with rlft.job.chat-template = FILE"
            : $"give one with rlft.job.chat-template = FILE (or builtin:{BuiltinChatTemplates.Names[0]}), or {stageKey}.chat-template";
        return [$"{key}: {data} holds conversations (lists of messages), and the model has no chat template to render them: {remedy}"];
    }

    // ---- rewards ----------------------------------------------------------------------------------

    static IEnumerable<string> CheckRewards(JobSpec job, StageSpec stage)
    {
        string at = $"{Root}.stages[{stage.Index}].rewards";
        bool rewardModelBefore = job.Stages.Any(s => s.Index < stage.Index && s.Kind == StageKind.RewardModel);
        var problems = new List<string>();
        if (stage.Rewards?.Has("components") == true)
        {
            RewardSpec spec;
            try { spec = RewardSpecReader.Read(stage.Config!); }
            catch (ConfigException e) { return e.Errors.Select(m => $"{Root}.stages[{stage.Index}].{m}"); }
            var functions = TorchRewardEngine.Functions(job);
            for (int i = 0; i < spec.Components.Count; i++)
            {
                string c = $"{at}.components[{i}]";
                switch (spec.Components[i].Source)
                {
                    case FunctionSpec f when !functions.Names.Contains(f.Function):
                        problems.Add($"{c}.function: no reward function named '{f.Function}' (registered: {string.Join(", ", functions.Names)})");
                        break;
                    case RewardModelSpec m when m.Model != TorchRewardEngine.JobRewardModel:
                        problems.Add($"{c}.model: '{m.Model}' is not a reward model this job has; a job scores with the reward model it trains, model = {TorchRewardEngine.JobRewardModel}");
                        break;
                    case RewardModelSpec when !rewardModelBefore:
                        problems.Add($"{c}: scores with the job's reward model, but no reward-model stage comes before stage {stage.Index}");
                        break;
                    case ClassifierSpec classifier:
                        problems.AddRange(CheckClassifierSource(job, stage, classifier).Select(m => $"{c}.{m}"));
                        break;
                    case HumanSpec when job.Feedback is null:
                        problems.Add($"{c}: asks human raters, but the job has no rlft.feedback section (see hocon/human-ppo.conf)");
                        break;
                }
            }
            return problems;
        }
        IReadOnlyList<(string Type, double Weight)> sources;
        try { sources = TorchRewardEngine.Sources(stage); }
        catch (ConfigException e) { return e.Errors; }
        if (sources.Any(s => s.Type == "reward-model") && !rewardModelBefore)
            problems.Add($"{at}.sources: a reward-model source needs a reward-model stage before stage {stage.Index}");
        return problems;
    }
}
