using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Heads;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;

namespace Rlft.Actors.Compute.Sessions;

/// <summary>
/// What an online stage's trainer needs from the learner: the model it trains (the bf16 compute copy under mixed
/// precision), the master it updates, the reference, and the trainable parameters (the adapters with LoRA; all of
/// them without).
/// </summary>
internal sealed record OnlineSessionSetup(
    JobSpec Job, StageSpec Stage, PolicyModel Trainable, PolicyModel Policy, IReferencePolicy Reference,
    IReadOnlyList<TorchSharp.Modules.Parameter>? Parameters, MixedPrecisionModel? Mixed, string? ResumeFrom,
    Rlft.Policy.Collectives.LearnerGroup Group);

/// <summary>
/// One online stage's training state in the learner, created when the stage begins and kept (for checkpoints)
/// until the next online stage begins: its trainer, optimizer, and the models only it uses.
/// </summary>
internal interface IOnlineSession : IDisposable
{
    TrainingOptimizer Optimizer { get; }
    /// <summary>One update on the batch's trainable samples (<paramref name="samples"/>: the scored samples no stage of the reward pipeline dropped).</summary>
    Dictionary<string, double> Step(TrainOn experience, IReadOnlyList<Experience> samples, HashSet<int> dropped);
    /// <summary>What exact resume needs beyond the optimizer (trainer/): written with each checkpoint.</summary>
    void Save(string checkpoint, string trainerDir);
    /// <summary>Restores <see cref="Save"/>'s state from a checkpoint's trainer/ directory.</summary>
    void Restore(string trainerDir, TrainerState state);
    /// <summary>The KL coefficient a checkpoint records (PPO's, which may adapt).</summary>
    double? KlCoef => null;

    /// <summary>The session of <paramref name="setup"/>'s stage kind.</summary>
    static IOnlineSession Begin(OnlineSessionSetup setup, Action<ValueHead> toDevice) => setup.Stage.Kind switch
    {
        StageKind.Ppo => new PpoSession(setup, toDevice),
        StageKind.OnlineDpo => new OnlineDpoSession(setup),
        _ => new GrpoSession(setup),
    };
}

/// <summary>PPO: the trainer and its value head (saved with every checkpoint from the stage on).</summary>
internal sealed class PpoSession : IOnlineSession
{
    readonly PpoTrainer _trainer;
    readonly ValueHead _value;

    public PpoSession(OnlineSessionSetup s, Action<ValueHead> toDevice)
    {
        int hidden = s.Policy.Model.Config.HiddenSize;
        _value = s.ResumeFrom is { } from
            ? ValueHead.Load(Path.Combine(from, CheckpointLayout.ValueHead), hidden)
            : new ValueHead(hidden, s.Job.Seed);
        toDevice(_value);
        _trainer = new PpoTrainer(s.Trainable, _value, s.Reference, s.Stage.Ppo, s.Stage.Optimizer, s.Parameters, seed: s.Job.Seed, mixedPrecision: s.Mixed) { Group = s.Group };
    }

    public TrainingOptimizer Optimizer => _trainer.Optimizer;
    public double? KlCoef => _trainer.Kl.Value;

    public Dictionary<string, double> Step(TrainOn experience, IReadOnlyList<Experience> samples, HashSet<int> dropped) => _trainer.Step(samples);

    public void Save(string checkpoint, string trainerDir)
    {
        _value.Save(Path.Combine(checkpoint, CheckpointLayout.ValueHead));
        CheckpointLayout.SaveRng(_trainer.ShuffleGenerator, Path.Combine(trainerDir, CheckpointLayout.PpoShuffle));
    }

    public void Restore(string trainerDir, TrainerState state)
    {
        if (_trainer.Kl is AdaptiveKlController adaptive && state.KlCoef is { } coef) adaptive.Restore(coef);
        CheckpointLayout.LoadRng(_trainer.ShuffleGenerator, Path.Combine(trainerDir, CheckpointLayout.PpoShuffle));
    }

    public void Dispose() => _trainer.Dispose();
}

/// <summary>GRPO: the trainer alone (its advantages are relative to each prompt's group).</summary>
internal sealed class GrpoSession(OnlineSessionSetup s) : IOnlineSession
{
    readonly GrpoTrainer _trainer = new(s.Trainable, s.Reference, s.Stage.Grpo, s.Stage.Optimizer, s.Parameters, mixedPrecision: s.Mixed) { Group = s.Group };

    public TrainingOptimizer Optimizer => _trainer.Optimizer;
    public Dictionary<string, double> Step(TrainOn experience, IReadOnlyList<Experience> samples, HashSet<int> dropped) => _trainer.Step(samples);
    public void Save(string checkpoint, string trainerDir) { }
    public void Restore(string trainerDir, TrainerState state) { }
    public void Dispose() => _trainer.Dispose();
}

/// <summary>
/// Online DPO (Guo et al., 2024): two samples per prompt, judged by the reward pipeline; the higher
/// scored is chosen. Pairs with equal scores carry no preference and are skipped. Each side is the sequence the
/// policy sampled — its prompt ids (a conversation as rendered for it) and its completion ids up to and with the
/// stop token — not a re-encoding of the decoded text.
/// </summary>
internal sealed class OnlineDpoSession(OnlineSessionSetup s) : IOnlineSession
{
    readonly DpoTrainer _trainer = new(s.Trainable, s.Reference, s.Stage.Dpo, s.Stage.Optimizer, s.Parameters, mixedPrecision: s.Mixed) { Group = s.Group };
    readonly int _eos = s.Policy.Tokenizer.EosId;

    public TrainingOptimizer Optimizer => _trainer.Optimizer;

    public Dictionary<string, double> Step(TrainOn experience, IReadOnlyList<Experience> samples, HashSet<int> dropped)
    {
        var (batch, scores) = (experience.Batch, experience.Scores);
        EncodedExample Sampled(RolloutSample s)
        {
            int[] completion = s.CompletionTokens.Length > 0 ? s.CompletionTokens : [_eos];
            return new EncodedExample([.. s.PromptTokens, .. completion], s.PromptTokens.Length,
                [.. new bool[s.PromptTokens.Length], .. Enumerable.Repeat(true, completion.Length)]);
        }
        var pairs = batch.Samples.Select((s, i) => (s, i)).Where(x => !dropped.Contains(x.i)).GroupBy(x => x.s.Group)
            .Where(g => g.Count() == 2)
            .Select(g => g.OrderByDescending(x => scores.Scores[x.i]).ToList())
            .Where(p => scores.Scores[p[0].i] > scores.Scores[p[1].i])
            .Select(p => new EncodedPair(Sampled(p[0].s), Sampled(p[1].s)))
            .ToList();
        var metrics = pairs.Count > 0 ? _trainer.Step(pairs) : new Dictionary<string, double>();
        metrics["dpo/pairs"] = pairs.Count;
        metrics["reward/mean"] = scores.Scores.Where((_, i) => !dropped.Contains(i)).DefaultIfEmpty(0).Average();
        return metrics;
    }

    public void Save(string checkpoint, string trainerDir) { }
    public void Restore(string trainerDir, TrainerState state) { }
    public void Dispose() => _trainer.Dispose();
}
