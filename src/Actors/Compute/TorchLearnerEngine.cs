using System.Diagnostics;
using Rlft.Actors.Compute.Sessions;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Collectives;
using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using Rlft.Policy.Runtime;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Actors.Compute;

/// <summary>
/// The learner's compute: the policy (and, per online stage, its value head and frozen reference), the
/// reward model, and the trainers of each stage kind. Offline stages run to completion here; online
/// stages take one scored batch per <see cref="Train"/>.
/// </summary>
internal sealed partial class TorchLearnerEngine : ILearnerEngine
{
    readonly JobSpec _job;
    readonly Device _device;
    readonly string _modelDir;
    // config.json and tokenizer files, sent with every weight blob; read once, they do not change.
    readonly Dictionary<string, string> _modelFiles;
    readonly PolicyModel _policy;
    // With bf16 compute the trainers run on the bf16 copy and update the fp32 master (_policy); under LoRA both give
    // way to a bf16 base once the adapters attach (HoldBaseInBf16).
    MixedPrecisionModel? _mixed;
    PolicyModel _trainable;
    RewardModel? _rm;
    PolicyModel? _reference;
    // The online stage's trainer and its models; kept until the next online stage begins (checkpoints save it).
    IOnlineSession? _session;

    public long PolicyVersion { get; private set; }
    public long RewardModelVersion { get; private set; } = -1;
    // LoRA (rlft.job.lora): attached when the first online or federated stage begins (at load when the job has neither,
    // or its base is quantized); the base stays frozen after that.
    LoraAdapters? _adapters;
    // A quantized base (rlft.job.model.quantize) ships in full once, at its load version, then adapters only.
    public bool ExportsAdapterOnly => _adapters is not null && !(_job.QuantizedBase && PolicyVersion == AdapterBaseVersion);
    /// <summary>The policy and its adapters (tests compare replicas with them).</summary>
    internal PolicyModel Policy => _policy;
    internal LoraAdapters? Adapters => _adapters;
    /// <summary>The frozen reference copy of full fine-tuning (null with LoRA, whose reference is the policy with its adapters off).</summary>
    internal PolicyModel? ReferenceCopy => _reference;
    /// <summary>The reward model trained by the job (null before a reward-model stage).</summary>
    internal RewardModel? TrainedRewardModel => _rm;
    internal JobSpec Job => _job;
    internal Device Device => _device;
    /// <summary>What trainers train: the policy, or its bf16 compute copy under mixed precision.</summary>
    internal PolicyModel Trainable => _trainable;
    internal MixedPrecisionModel? Mixed => _mixed;
    public long AdapterBaseVersion { get; private set; } = -1;
    /// <summary>The data-parallel group this learner trains in (<see cref="LearnerGroup.Solo"/>: alone); every trainer it makes steps with it.</summary>
    internal LearnerGroup Group { get; }

    // Encoders with a template override (a stage's or the job's chat-template), by the key's value; and the Jinja
    // source the reward model was trained with when it was not the model's own (it travels with the reward model).
    readonly Dictionary<string, ExampleEncoder> _encoders = new();
    string? _rmTemplate;

    /// <summary>
    /// How <paramref name="stage"/>'s examples and prompts are encoded: the policy's tokenizer and end tokens with the
    /// stage's chat template (its own override, the job's, or the model's template).
    /// </summary>
    internal ExampleEncoder EncoderFor(StageSpec? stage)
    {
        string? key = stage is null ? _job.ChatTemplate : _job.ChatTemplateFor(stage);
        if (key is null) return _policy.Encoder;
        if (!_encoders.TryGetValue(key, out var encoder))
            _encoders[key] = encoder = new ExampleEncoder(_policy.Tokenizer, ChatTemplate.Load(_modelDir, key), _policy.Encoder.EndIds);
        return encoder;
    }

    static string? TemplateSource(string? key) => key is null ? null : BuiltinChatTemplates.Read(key).Source;

    // The checkpoint a resumed run continues from (rlft run --resume): weights here, training state in trainer/.
    readonly string? _resumeFrom;
    TrainerState? _resumed;

    // Adapters from the start (QLoRA, or LoRA with no online stage): every stage trains them; a stage's reference is the base plus the adapters as the stage found
    // them (just the base while they are zero). Kept with checkpoints so a resumed stage has the same reference.
    SnapshotReference? _stageReference;

    public TorchLearnerEngine(JobSpec job, string? resumeFrom = null, LearnerGroup? group = null)
    {
        (_job, _resumeFrom, Group) = (job, resumeFrom, group ?? LearnerGroup.Solo);
        _device = TorchRuntime.ResolveDevice(job.Device);
        manual_seed(job.Seed);
        if (job.Model.Path is { } path)
        {
            if (!File.Exists(Path.Combine(path, Checkpoint.ConfigFile))) throw new ConfigException($"rlft.job.model.path: no config.json in {path}");
            _modelDir = path;
        }
        else
        {
            _modelDir = InitModel.Ensure(Path.Combine(job.RunDirectory, "init-model"), job.Model, job.Seed);
        }
        string weights = resumeFrom is null ? _modelDir : Path.Combine(resumeFrom, CheckpointLayout.Policy);
        var quantization = job.Model.Quantization;
        if (quantization.Enabled && resumeFrom is not null) QuantizedBase.CheckResumable(weights, quantization);
        // LoRA with bf16 compute in a job that begins with an online stage, or whose adapters attach at the start: nothing
        // ever trains the full weights, so the base is read straight into bf16 (no fp32 model, no mixed-precision copy at any point).
        bool bf16FromStart = job.LoraInBf16(_device) && (job.LoraFromStart || (job.Stages.Count > 0 && job.Stages[0].IsOnline));
        var model = quantization.Enabled ? ModelQuantizer.Load(weights, quantization, _device)
            : Checkpoint.Load(weights, _device, bf16FromStart ? ScalarType.BFloat16 : ScalarType.Float32);
        var tokenizer = HfTokenizer.Load(_modelDir);
        _policy = new PolicyModel(model, tokenizer, ModelFiles.Encoder(_modelDir, tokenizer));
        _modelFiles = ModelFiles.Read(_modelDir);
        ModelHash = Compute.Federated.ModelStructure.Hash(_policy.Model);
        _mixed = !quantization.Enabled && !bf16FromStart && MixedPrecisionModel.Wanted(job.Precision, _device) ? new MixedPrecisionModel(_policy.Model) : null;
        _trainable = _mixed is null ? _policy : new PolicyModel(_mixed.Compute, _policy.Tokenizer, _policy.Encoder);
        if (resumeFrom is not null) RestoreModels(resumeFrom);
        // A quantized base is frozen from the start, and so is the base of a LoRA job with no online or federated stage:
        // the adapters attach now and every stage trains them.
        if (quantization.Enabled && job.Lora is null) throw new ConfigException("rlft.job.model.quantize: a quantized base needs rlft.job.lora");
        if (job.LoraFromStart) AttachAdapters();
    }

    /// <summary>
    /// The rest of a checkpoint's models and counters: versions, LoRA adapters, the online stage's frozen
    /// reference, the reward model, and the global RNG state.
    /// </summary>
    void RestoreModels(string dir)
    {
        var state = _resumed = TrainerState.Read(dir);
        (PolicyVersion, RewardModelVersion, AdapterBaseVersion) = (state.PolicyVersion, state.RewardModelVersion, state.AdapterBaseVersion);
        string adapterDir = Path.Combine(dir, CheckpointLayout.Adapter);
        string reference = Path.Combine(dir, CheckpointLayout.Trainer, CheckpointLayout.Reference);
        // Without adapters the stage-start weights are kept apart; with them, the base (policy/) is the
        // reference: the policy with its adapters switched off.
        if (Directory.Exists(reference))
        {
            var model = PolicyModel.Freeze(Checkpoint.Load(reference, _device), _job.Model.FrozenDtype);
            _reference = new PolicyModel(model, _policy.Tokenizer, _policy.Encoder);
        }
        if (Directory.Exists(adapterDir))
        {
            HoldBaseInBf16();
            _adapters = LoraAdapters.Load(_policy.Model, adapterDir);
        }
        string snapshot = Path.Combine(dir, CheckpointLayout.Trainer, CheckpointLayout.ReferenceAdapter);
        if (_adapters is not null && Directory.Exists(snapshot)) _stageReference = new SnapshotReference(_policy, AdapterSnapshot.Load(_adapters, snapshot));
        string rm = Path.Combine(dir, CheckpointLayout.RewardModel);
        if (Directory.Exists(rm))
        {
            // The reward model keeps the template of the stage that trained it.
            var rmStage = _job.Stages.LastOrDefault(s => s.Kind == StageKind.RewardModel);
            _rmTemplate = rmStage is null ? null : TemplateSource(_job.ChatTemplateFor(rmStage));
            var trunk = new PolicyModel(Checkpoint.Load(rm, _device), _policy.Tokenizer, EncoderFor(rmStage));
            var head = RewardHead.Load(Path.Combine(rm, CheckpointLayout.RewardHead), trunk.Model.Config.HiddenSize);
            head.to(_device);
            _rm = new RewardModel(trunk, head);
        }
        CheckpointLayout.LoadRng(Generator.Default, Path.Combine(dir, CheckpointLayout.Trainer, CheckpointLayout.GlobalRng));
    }

    public void BeginOnlineStage(StageSpec stage, bool resume = false)
    {
        _session?.Dispose();
        _session = null;
        if (resume && (_resumeFrom is null || _resumed is null)) throw new InvalidOperationException("this learner was not started from a checkpoint");
        _trainable.Model.GradientCheckpointing = stage.GradientCheckpointing;
        // Resuming, the reference (or the adapters' base) came with the checkpoint.
        if (!resume && _job.Lora is null)
        {
            // The frozen reference (with LoRA, the reference is the policy with its adapters switched off: no copy).
            _reference?.Model.Dispose();
            _reference = _policy.FrozenCopy(_job.Model.FrozenDtype);
        }
        AttachAdapters();
        // With adapters, the reference is the same model with them switched off: no second copy in training.
        IReferencePolicy reference = _job.QuantizedBase ? StageReference(resume)
            : _adapters is not null ? new AdapterReference(_policy, _adapters) : new FrozenReference(_reference!);
        var setup = new OnlineSessionSetup(_job, stage, _trainable, _policy, reference, _adapters?.Parameters().ToList(), _mixed, resume ? _resumeFrom : null, Group);
        _session = IOnlineSession.Begin(setup, head => head.to(_device));
        if (resume)
        {
            string trainer = Path.Combine(_resumeFrom!, CheckpointLayout.Trainer);
            _session.Optimizer.Load(Path.Combine(trainer, CheckpointLayout.Optimizer));
            _session.Restore(trainer, _resumed!);
        }
    }

    /// <summary>
    /// LoRA with bf16 compute (<see cref="JobSpec.LoraInBf16"/>), as the adapters are about to attach: the base is
    /// frozen from now on and needs no fp32 master, so it is cast to bf16 in place and the mixed-precision copy is
    /// released; the adapters then attach in fp32 and train on it directly. Half the base's memory, and the rollout
    /// replicas and the reference (the adapters switched off) read the same bf16 tensors.
    /// </summary>
    void HoldBaseInBf16()
    {
        if (!_job.LoraInBf16(_device)) return;
        _mixed?.Dispose();
        _mixed = null;
        _trainable = _policy;
        _policy.Model.to(ScalarType.BFloat16);
        NativeHeap.Trim();
    }

    /// <summary>LoRA (rlft.job.lora): attaches the adapters when the first stage that trains them begins (online or federated, or the job's start: <see cref="JobSpec.LoraFromStart"/>); the base stays frozen after that.</summary>
    internal void AttachAdapters()
    {
        if (_job.Lora is not { } lora || _adapters is not null) return;
        HoldBaseInBf16();
        _adapters = LoraAdapters.Apply(_policy.Model, lora, _job.Seed);
        AdapterBaseVersion = PolicyVersion;
    }

    /// <summary>QLoRA: the reference for the stage beginning now (the adapters as they are), or the one a checkpoint kept.</summary>
    internal SnapshotReference StageReference(bool resume)
    {
        if (resume && _stageReference is not null) return _stageReference;
        _stageReference?.Snapshot.Dispose();
        return _stageReference = new SnapshotReference(_policy, AdapterSnapshot.Take(_adapters!));
    }

    public PolicyUpdated Train(StageSpec stage, TrainOn experience)
    {
        var batch = experience.Batch;
        var dropped = experience.Scores.Dropped.ToHashSet();
        // GRPO advantages are relative to the group: a dropped sample takes its whole group with it.
        var samples = experience.Scores.Trainable(batch, stage.SamplesPerPrompt)
            .Select(i => (s: batch.Samples[i], i))
            .Select(x => new Experience(x.s.PromptTokens, x.s.CompletionTokens, x.s.Logprobs, experience.Scores.Scores[x.i], x.s.Group))
            .ToList();
        if (samples.Count == 0) throw new InvalidOperationException($"batch {batch.BatchId}: every sample was dropped by the reward pipeline");
        var sw = Stopwatch.StartNew();
        var metrics = (_session ?? throw new InvalidOperationException("online stage not begun")).Step(experience, samples, dropped);
        // The step's activations and logit chunks were freed into the C heap, which keeps them: give them back, so
        // that generation and evaluation between steps start from the model's own memory.
        NativeHeap.Trim();
        double train = sw.Elapsed.TotalSeconds;
        long generated = batch.Samples.Sum(s => (long)s.CompletionTokens.Length);
        metrics["timing/train"] = train;
        metrics["timing/generate"] = batch.Seconds;
        metrics["timing/score"] = experience.Scores.Seconds;
        // Sequence tokens (prompt + completion) the update trains on per pass over the batch: the work behind timing/train.
        metrics["train/tokens"] = samples.Sum(s => (long)s.PromptTokens.Length + s.CompletionTokens.Length);
        metrics["rollout/tokens_per_second"] = batch.Seconds > 0 ? generated / batch.Seconds : 0;
        metrics["rollout/policy_lag"] = PolicyVersion - batch.PolicyVersion;
        metrics["rollout/dropped"] = batch.Samples.Length - samples.Count;
        metrics["reward/nonfinite"] = experience.Scores.NonFinite;
        for (int k = 0; k < experience.Scores.ComponentNames.Length; k++)
            metrics[$"reward/{experience.Scores.ComponentNames[k]}"] = experience.Scores.Components[k].Average();
        PolicyVersion++;
        return new PolicyUpdated(batch.BatchId, stage.Index, 0, PolicyVersion, metrics);
    }

    public byte[] ExportWeights(WeightKind kind)
    {
        using var scope = NewDisposeScope();
        if (kind == WeightKind.Policy)
            return ExportsAdapterOnly
                ? ModelBlob.Pack(_adapters!.StateDict(), new Dictionary<string, string> { [LoraAdapters.ConfigFile] = _adapters.ConfigJson() })
                : _job.QuantizedBase ? ExportAdapterBase() : ModelBlob.Pack(_policy.Model.state_dict(), _modelFiles);
        var rm = _rm ?? throw new InvalidOperationException("no reward model has been trained");
        var tensors = rm.Trunk.Model.state_dict().Select(kv => KeyValuePair.Create("trunk." + kv.Key, kv.Value))
            .Concat(rm.Head.state_dict().Select(kv => KeyValuePair.Create("head." + kv.Key, kv.Value)));
        return ModelBlob.Pack(tensors, RewardModelFiles());
    }

    public LocalWeights? ShareWeights(WeightKind kind)
    {
        if (kind == WeightKind.RewardModel)
        {
            // Trained only by reward-model stages, which run when nothing scores: reward workers read it in place.
            var rm = _rm ?? throw new InvalidOperationException("no reward model has been trained");
            return LocalWeights.Live(kind, RewardModelVersion, rm.Trunk.Model.state_dict().Select(kv => KeyValuePair.Create("trunk." + kv.Key, kv.Value))
                .Concat(rm.Head.state_dict().Select(kv => KeyValuePair.Create("head." + kv.Key, kv.Value))), RewardModelFiles());
        }
        if (ExportsAdapterOnly)
            return LocalWeights.Snapshot(kind, PolicyVersion, _adapters!.StateDict(), new Dictionary<string, string> { [LoraAdapters.ConfigFile] = _adapters.ConfigJson() },
                adapterOnly: true, baseVersion: AdapterBaseVersion);
        if (_adapters is not null) return ShareAdapterBase();
        // Full weights: replicas generate with this version while the learner trains the next one only inside an online
        // stage with max-policy-lag ≥ 1; then they need a copy (in their dtype), else they read the learner's own tensors.
        var state = _policy.Model.state_dict();
        return _session is not null && _job.MaxPolicyLag >= 1
            ? LocalWeights.Snapshot(kind, PolicyVersion, state, _modelFiles, _job.Model.FrozenDtype)
            : LocalWeights.Live(kind, PolicyVersion, state, _modelFiles);
    }

    public LocalWeights? ShareAdapterBase()
    {
        if (_adapters is null) throw new InvalidOperationException("no LoRA adapters are attached");
        // The base is frozen once adapters attach: replicas in this process read the learner's own tensors.
        var files = _job.QuantizedBase ? QuantizedBase.BlobFiles(_modelFiles, _job.Model.Quantization) : _modelFiles;
        return LocalWeights.Live(WeightKind.Policy, AdapterBaseVersion, _policy.Model.state_dict().Where(kv => !kv.Key.Contains(".lora_")), files);
    }

    public byte[] ExportAdapterBase()
    {
        if (_adapters is null) throw new InvalidOperationException("no LoRA adapters are attached");
        using var scope = NewDisposeScope();
        // A quantized base travels as its 4/8-bit tensors (and the settings to rebuild the layout): about its quantized size.
        var files = _job.QuantizedBase ? QuantizedBase.BlobFiles(_modelFiles, _job.Model.Quantization) : _modelFiles;
        return ModelBlob.Pack(_policy.Model.state_dict().Where(kv => !kv.Key.Contains(".lora_")), files);
    }

    /// <summary>The model's files with the reward model's template, when its stage overrode the model's: it scores conversations as it was trained on them.</summary>
    Dictionary<string, string> RewardModelFiles() =>
        _rmTemplate is null ? _modelFiles : new Dictionary<string, string>(_modelFiles) { [ChatTemplateFile] = _rmTemplate };

    const string ChatTemplateFile = "chat_template.jinja";

    public EvaluationDone Evaluate(StageSpec? stage, string label, PromptItem[] prompts)
    {
        var taskReward = stage is null ? null : TaskReward(stage);
        var encoder = EncoderFor(stage);
        var inputs = prompts.Select(p => p.Messages is null ? PromptInput.Plain(p.Prompt, p.Answer) : PromptInput.Chat(p.Messages, encoder, p.Answer)).ToList();
        // With LoRA on a full-precision base the reference is the policy with its adapters off, for the KL and the win rate.
        bool adapterReference = _reference is null && _adapters is not null && !_job.QuantizedBase;
        IReferencePolicy? reference = _reference is not null ? new FrozenReference(_reference)
            : adapterReference ? new AdapterReference(_policy, _adapters!) : _stageReference;
        var sampler = adapterReference ? _policy.WithEncoder(encoder) : _reference?.WithEncoder(encoder);
        var result = Evaluator.Run(_policy.WithEncoder(encoder), inputs, taskReward, EvalSampling(stage),
            reference, sampler, Judge(taskReward), asReference: adapterReference ? _adapters!.Disabled : null);
        int n = Math.Min(16, prompts.Length);
        return new EvaluationDone(stage?.Index ?? -1, label, result.Metrics, result.Prompts[..n], result.Completions[..n]);
    }

    /// <summary>Held-out samples are drawn as the stage draws its rollouts (temperature, top-k, top-p): the figures are the policy's as trained.</summary>
    internal GenerationOptions EvalSampling(StageSpec? stage)
    {
        var s = stage?.Sampling ?? new SamplingSpec(16, 1.0, 0, 1.0);
        return new GenerationOptions { MaxNewTokens = s.MaxNewTokens, Temperature = s.Temperature, TopK = s.TopK, TopP = s.TopP, Seed = _job.Seed + 7919 };
    }

    /// <summary>
    /// The task's own reward, where the stage works on the built-in task (its data is <c>builtin:…</c>); a job on
    /// its own data has no task reward the learner knows (its rewards live in the reward pipeline), and reports
    /// reward-model scores and win rates instead.
    /// </summary>
    internal static Func<string, string, string?, double>? TaskReward(StageSpec stage) =>
        stage.Data.StartsWith("builtin:", StringComparison.Ordinal) || stage.EvalData?.StartsWith("builtin:", StringComparison.Ordinal) == true
            ? ReviewTask.Score : null;

    /// <summary>
    /// What decides a win between two completions: the job's reward model when there is one (a conversation rendered
    /// with its template), else the task reward.
    /// </summary>
    internal Func<IReadOnlyList<(PromptInput Prompt, string Completion)>, float[]>? Judge(Func<string, string, string?, double>? taskReward) =>
        _rm is not null ? items => _rm.ScoreSamples(items)
        : taskReward is not null ? items => items.Select(x => (float)taskReward(x.Prompt.TaskText, x.Completion, null)).ToArray()
        : null;

    public void CheckGroupStart() => Group.CheckAgreement(0, _policy.Model.parameters());

    public void SaveCheckpoint(string directory)
    {
        // policy/ holds the base weights (adapter tensors are not part of a checkpoint); with LoRA, the
        // adapters sit beside it in PEFT's format, pointing at it as their base model.
        if (_job.QuantizedBase) QuantizedBase.SaveBase(_modelDir, Path.Combine(directory, CheckpointLayout.Policy), _job.Model.Quantization);
        else Checkpoint.Save(_policy.Model, Path.Combine(directory, CheckpointLayout.Policy), _modelDir);
        // A job-wide template override is the template the policy was trained with: it goes with the weights.
        if (TemplateSource(_job.ChatTemplate) is { } template) File.WriteAllText(Path.Combine(directory, CheckpointLayout.Policy, ChatTemplateFile), template);
        _adapters?.Save(Path.Combine(directory, CheckpointLayout.Adapter), baseModel: "../" + CheckpointLayout.Policy);
        if (_rm is not null)
        {
            Checkpoint.Save(_rm.Trunk.Model, Path.Combine(directory, CheckpointLayout.RewardModel), _modelDir);
            if (_rmTemplate is not null) File.WriteAllText(Path.Combine(directory, CheckpointLayout.RewardModel, ChatTemplateFile), _rmTemplate);
            _rm.Head.Save(Path.Combine(directory, CheckpointLayout.RewardModel, CheckpointLayout.RewardHead));
        }
        // trainer/: what exact resume needs beyond the weights.
        string trainer = Path.Combine(directory, CheckpointLayout.Trainer);
        Directory.CreateDirectory(trainer);
        if (_reference is not null && _adapters is null) Checkpoint.Save(_reference.Model, Path.Combine(trainer, CheckpointLayout.Reference), _modelDir);
        _stageReference?.Snapshot.Save(Path.Combine(trainer, CheckpointLayout.ReferenceAdapter));
        _session?.Optimizer.Save(Path.Combine(trainer, CheckpointLayout.Optimizer));
        _session?.Save(directory, trainer);
        CheckpointLayout.SaveRng(Generator.Default, Path.Combine(trainer, CheckpointLayout.GlobalRng));
        new TrainerState(PolicyVersion, RewardModelVersion, AdapterBaseVersion, _session?.KlCoef).Write(directory);
    }

    public void Dispose()
    {
        _federated?.Dispose();
        _session?.Dispose();
        _mixed?.Dispose();
        _policy.Model.Dispose();
        _reference?.Model.Dispose();
        _stageReference?.Snapshot.Dispose();
        _rm?.Trunk.Model.Dispose();
    }
}

/// <summary>The engines RLFT runs with: TorchSharp models on the job's device.</summary>
internal sealed class TorchEngineFactory : Runtime.IEngineFactory
{
    public ILearnerEngine CreateLearner(JobSpec job, string? resumeFrom = null) =>
        job.Learners > 1 ? new LearnerGroupEngine(job, group => new TorchLearnerEngine(job, resumeFrom, group)) : new TorchLearnerEngine(job, resumeFrom);
    public ILearnerEngine CreateGroupMember(JobSpec job, string? resumeFrom, LearnerGroup group) => new TorchLearnerEngine(job, resumeFrom, group);
    public IRolloutEngine CreateRollout(JobSpec job, int index) => new TorchRolloutEngine(job);
    public IRewardEngine CreateReward(JobSpec job, int index, Rlft.Reward.Sources.IHumanRatingPort? humanRatings) => new TorchRewardEngine(job, humanRatings);
}
