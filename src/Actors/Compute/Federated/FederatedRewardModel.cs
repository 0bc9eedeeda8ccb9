using TorchSharp;
using Rlft.Policy.Chat;
using Rlft.Policy.Heads;
using Rlft.Policy.Lora;
using Rlft.Policy.Training.Trainers;

namespace Rlft.Actors.Compute.Federated;

/// <summary>
/// The reward model of a federated reward-model stage, made the same way on the server and on every client so that
/// their trainable parameters line up: a copy of the policy's weights as the trunk (the base only: a policy's own LoRA
/// adapters are not part of it, as in an offline reward-model stage), and a scalar head seeded by the job's seed. With
/// the job's <c>lora</c>, fresh adapters on the trunk and the head train (what travels each round); without it, the
/// whole trunk and the head. <see cref="Finish"/> merges the adapters into a plain trunk once the stage ends.
/// </summary>
internal sealed class FederatedRewardModel : IDisposable
{
    LoraAdapters? _adapters;

    public RewardModel Model { get; private set; }

    public FederatedRewardModel(PolicyModel policy, ExampleEncoder encoder, LoraConfig? lora, long seed)
    {
        // The base alone: a client's own adapters hold the last global weights it trained, not the server's final ones.
        var trunk = policy.FrozenCopy(adapters: false).WithEncoder(encoder);
        if (lora is null) foreach (var p in trunk.Model.parameters()) p.requires_grad = true;
        else _adapters = LoraAdapters.Apply(trunk.Model, lora, seed);
        var head = new RewardHead(trunk.Model.Config.HiddenSize, seed);
        head.to(trunk.Device);
        Model = new RewardModel(trunk, head);
    }

    /// <summary>
    /// The trained reward model as the job keeps it: with adapters, a plain copy of the trunk with them folded in (what
    /// the checkpoint's <c>reward-model/</c> and the reward workers take); the caller owns it from here.
    /// </summary>
    public RewardModel Finish()
    {
        var model = Model;
        if (_adapters is not null)
        {
            var plain = model.Trunk.FrozenCopy().WithEncoder(model.Trunk.Encoder);   // folds the active adapters
            model.Trunk.Model.Dispose();
            model = new RewardModel(plain, model.Head);
            _adapters = null;
        }
        Model = null!;
        return model;
    }

    public void Dispose()
    {
        Model?.Trunk.Model.Dispose();
        Model?.Head.Dispose();
    }
}
