using Rlft.Actors.Compute.Federated;
using Rlft.Actors.Configuration;
using Rlft.Actors.Coordination;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Regularization;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Compute.Sessions;

/// <summary>
/// The server's side of a federated stage in the learner: the global weights and the stage's outer loop
/// (<see cref="FederatedServer"/> over the policy's trainable parameters — all weights, or the LoRA adapters, which
/// attach when the stage begins as they do for an online stage), and the held-out figures measured before the first
/// round and after the last on the stage's <c>eval-data</c>: SFT <c>eval/loss</c>; DPO <c>eval/accuracy</c> and
/// <c>eval/margin</c> of the implicit reward against the stage-start policy. The training data is on the clients.
/// </summary>
internal sealed class FederatedSession : IDisposable
{
    readonly FederatedServer _server;
    readonly Func<Dictionary<string, double>> _measure;
    readonly IDisposable? _evaluator;
    readonly PolicyModel? _start;
    readonly FederatedRewardModel? _rewardModel;
    readonly Dictionary<string, double> _figures = new();

    public int Stage { get; }

    FederatedSession(int stage, FederatedServer server, Func<Dictionary<string, double>> measure, IDisposable? evaluator, PolicyModel? start,
        FederatedRewardModel? rewardModel = null)
    {
        (Stage, _server, _measure, _evaluator, _start, _rewardModel) = (stage, server, measure, evaluator, start, rewardModel);
        Record("before");
    }

    public static FederatedSession Begin(TorchLearnerEngine engine, StageSpec stage)
    {
        var spec = stage.Federated ?? throw new InvalidOperationException($"stage {stage.Index} is not federated");
        if (engine.Mixed is not null || Rlft.Policy.Training.MixedPrecisionModel.Wanted(engine.Job.Precision, engine.Device))
            throw new ConfigException($"rlft.job.precision: a federated stage trains in fp32 on every node; set rlft.job.precision = fp32");
        engine.AttachAdapters();
        var encoder = engine.EncoderFor(stage);
        var policy = engine.Policy.WithEncoder(encoder);
        string? heldOut = stage.EvalData is { } eval ? DataResolver.Resolve(eval, engine.Job.RunDirectory, engine.Job.Seed, $"rlft.job.stages[{stage.Index}].eval-data") : null;
        if (stage.Kind == StageKind.RewardModel) return RewardModel(engine, stage, spec, encoder, heldOut);
        var server = new FederatedServer(spec, TrainableParameters.Of(engine.Policy.Model), noiseSeed: engine.Job.Seed + stage.Index);
        try
        {
            if (heldOut is null) return new FederatedSession(stage.Index, server, () => [], null, null);
            if (stage.Kind == StageKind.Sft)
            {
                var loss = new SftLoss(stage.CompletionOnlyLoss, stage.AssistantOnlyLoss);
                var examples = DatasetFormats.ReadSft(heldOut).Select(r => r.Encode(encoder, loss)).ToList();
                return new FederatedSession(stage.Index, server, () => new() { ["eval/loss"] = SftTrainer.Loss(policy, examples) }, null, null);
            }
            var pairs = DatasetFormats.ReadPreferences(heldOut).Select(r => r.Encode(encoder)).ToList();
            // The stage-start policy is DPO's reference for the held-out implicit reward, as in an offline DPO stage.
            var start = engine.Adapters is not null ? null : engine.Policy.FrozenCopy(engine.Job.Model.FrozenDtype).WithEncoder(encoder);
            IReferencePolicy reference = start is null ? engine.StageReference(resume: false) : new FrozenReference(start);
            var trainer = new DpoTrainer(policy, reference, stage.Dpo, stage.Optimizer);
            return new FederatedSession(stage.Index, server, () => trainer.Evaluate(pairs), trainer, start);
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A federated reward-model stage: the global weights are the reward model's trainable ones (<see cref="FederatedRewardModel"/>),
    /// its held-out figures the pairs' accuracy and margin; at the end it becomes the job's reward model.
    /// </summary>
    static FederatedSession RewardModel(TorchLearnerEngine engine, StageSpec stage, FederatedSpec spec, ExampleEncoder encoder, string? heldOut)
    {
        var rm = new FederatedRewardModel(engine.Policy, encoder, engine.Job.Lora, engine.Job.Seed);
        FederatedServer? server = null;
        try
        {
            server = new FederatedServer(spec, rm.Model.Trainable(), noiseSeed: engine.Job.Seed + stage.Index);
            var trainer = new RewardModelTrainer(rm.Model, stage.RewardModel, stage.Optimizer);
            var pairs = heldOut is null ? [] : DatasetFormats.ReadPreferences(heldOut).Select(r => r.Encode(encoder)).ToList();
            return new FederatedSession(stage.Index, server, () => pairs.Count == 0 ? [] : trainer.Evaluate(pairs), trainer, null, rm);
        }
        catch
        {
            server?.Dispose();
            rm.Dispose();
            throw;
        }
    }

    /// <summary>A reward-model stage's trained model, once <see cref="End"/> measured it (null for other stages); the caller owns it.</summary>
    public Policy.Training.Trainers.RewardModel? TakeRewardModel() => _rewardModel?.Finish();

    void Record(string label) { foreach (var (k, v) in _measure()) _figures[$"{label}/{k}"] = v; }

    /// <summary>The global weights as the clients receive them.</summary>
    public float[] Global() => _server.Global();

    /// <summary>Aggregates a round into the global weights (and the policy); the outer loop's figures.</summary>
    public Dictionary<string, double> Apply(AggregateRound round) => _server.Apply(round);

    /// <summary>Measures after the last round; the stage's before and after figures.</summary>
    public Dictionary<string, double> End()
    {
        Record("after");
        return new Dictionary<string, double>(_figures);
    }

    public void Dispose()
    {
        _server.Dispose();
        _evaluator?.Dispose();
        _start?.Model.Dispose();
        _rewardModel?.Dispose();
    }
}
