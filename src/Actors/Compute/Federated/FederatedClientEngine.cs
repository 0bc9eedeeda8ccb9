using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using Rlft.Policy.Runtime;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Regularization;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;
using static TorchSharp.torch;

namespace Rlft.Actors.Compute.Federated;

/// <summary>
/// The compute of a client node: the job's model (its <c>model.path</c>, or the same preset the learner initialises,
/// written into the client's own work directory from the job's seed), LoRA adapters attached as the learner attaches
/// them, and per federated stage a <see cref="FederatedClient"/> over this node's data. Runs on the client actor's
/// pinned thread. What leaves it: the update, the number of examples and the inner losses.
/// </summary>
internal sealed class FederatedClientEngine : IDisposable
{
    readonly JobSpec _job;
    readonly ClientData _data;
    readonly string _modelDir;
    readonly PolicyModel _policy;
    LoraAdapters? _adapters;
    FederatedRewardModel? _rewardModel;
    int _stage = -1;
    FederatedClient? _client;
    long _trainableValues;

    public string Id { get; }
    public string ModelHash { get; }

    public FederatedClientEngine(JobSpec job, ClientData data, string id, string workDirectory)
    {
        (_job, _data, Id) = (job, data, id);
        manual_seed(job.Seed);
        var device = TorchRuntime.ResolveDevice(job.Device);
        if (job.Model.Path is { } path) _modelDir = path;
        else _modelDir = InitModel.Ensure(Path.Combine(workDirectory, "init-model"), job.Model, job.Seed);
        var tokenizer = HfTokenizer.Load(_modelDir);
        _policy = new PolicyModel(Checkpoint.Load(_modelDir, device, ScalarType.Float32), tokenizer, ModelFiles.Encoder(_modelDir, tokenizer));
        ModelHash = ModelStructure.Hash(_policy.Model);
    }

    /// <summary>The weight this client's update carries in the round's mean (its examples; 1 under privacy). Begins the stage if it is new.</summary>
    public double WeightFor(FederatedRoundRequest request)
    {
        if (request.Stage != _stage) Begin(request.Stage);
        return _client!.WeightFor(request);
    }

    /// <summary>One round: the global weights in, this client's update out.</summary>
    public FederatedRoundUpdate Train(FederatedRoundRequest request)
    {
        if (request.Stage != _stage) Begin(request.Stage);
        if (request.Global.Length != _trainableValues)
            throw new InvalidOperationException($"the server's global weights have {request.Global.Length} values and this client's trainable parameters {_trainableValues}: the models differ");
        using var scope = NewDisposeScope();
        return _client!.Train(request);
    }

    void Begin(int index)
    {
        if (index < 0 || index >= _job.Stages.Count || _job.Stages[index].Federated is not { } spec)
            throw new InvalidOperationException($"stage {index} of the job is not a federated stage");
        var stage = _job.Stages[index];
        if (_job.Lora is { } lora && _adapters is null) _adapters = LoraAdapters.Apply(_policy.Model, lora, _job.Seed);
        string? key = _job.ChatTemplateFor(stage);
        var encoder = key is null ? _policy.Encoder : new ExampleEncoder(_policy.Tokenizer, ChatTemplate.Load(_modelDir, key), _policy.Encoder.EndIds);
        var policy = _policy.WithEncoder(encoder);
        // The stage's schedule spans the federation's rounds (each round at its scheduled rate), not each round's steps.
        var inner = stage.Optimizer;
        string file = _data.FileFor(stage);
        IParticipant participant;
        int count;
        if (stage.Kind == StageKind.Sft)
        {
            var loss = new SftLoss(stage.CompletionOnlyLoss, stage.AssistantOnlyLoss);
            var examples = DatasetFormats.ReadSft(file).Select(r => r.Encode(encoder, loss)).ToList();
            (participant, count) = (new SftParticipant(Id, policy, examples, inner, spec.LocalSteps, stage.BatchSize) { Mu = spec.Mu, ScheduleRounds = spec.Rounds }, examples.Count);
        }
        else if (stage.Kind == StageKind.Dpo)
        {
            var pairs = DatasetFormats.ReadPreferences(file).Select(r => r.Encode(encoder)).ToList();
            (participant, count) = (new DpoParticipant(Id, policy, pairs, stage.Dpo, inner, spec.LocalSteps, stage.BatchSize) { Mu = spec.Mu, ScheduleRounds = spec.Rounds }, pairs.Count);
        }
        else if (stage.Kind == StageKind.RewardModel)
        {
            var pairs = DatasetFormats.ReadPreferences(file).Select(r => r.Encode(encoder)).ToList();
            _rewardModel?.Dispose();
            _rewardModel = new FederatedRewardModel(_policy, encoder, _job.Lora, _job.Seed);
            (participant, count) = (new RewardModelParticipant(Id, _rewardModel.Model, pairs, stage.RewardModel, inner, spec.LocalSteps, stage.BatchSize) { Mu = spec.Mu, ScheduleRounds = spec.Rounds }, pairs.Count);
        }
        else throw new ConfigException($"rlft.job.stages[{index}].federated: client nodes train sft, reward-model and dpo stages, not {stage.Kind}");
        var trainable = participant is RewardModelParticipant rm ? rm.Trainable()
            : TrainableParameters.Of(_policy.Model).Select(p => (p.Name, p.Parameter)).ToList();
        _trainableValues = trainable.Sum(p => p.Value.NumberOfElements);
        _client = new FederatedClient(Id, participant, trainable, count);
        _stage = index;
    }

    public void Dispose()
    {
        _rewardModel?.Dispose();
        _policy.Model.Dispose();
    }
}
