using Rlft.Policy.Chat;
using Rlft.Policy.Training.Trainers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>
/// A participant whose inner steps are supervised fine-tuning on its own examples: a task in meta-learning, or a
/// client's local training in federated SFT. Each round starts from the global weights with a fresh optimizer
/// (inner-loop state does not carry across rounds), takes <paramref name="steps"/> batches of
/// <paramref name="batchSize"/> examples — continuing through its examples round after round, wrapping around — and
/// returns <c>adapted − global</c>, weighted by its number of examples.
/// </summary>
/// <param name="policy">The model the participant trains in place; the global weights are written into its trainable parameters first.</param>
public sealed class SftParticipant(string id, PolicyModel policy, IReadOnlyList<EncodedExample> examples, OptimizerOptions optimizer, int steps, int batchSize) : IParticipant
{
    int _cursor;

    public string Id => id;
    public IReadOnlyList<EncodedExample> Examples => examples;

    public ParticipantUpdate Run(WeightSet global, int round)
    {
        if (examples.Count == 0) throw new InvalidOperationException($"participant {id} has no examples");
        var trainable = Trainable(policy.Model);
        global.CopyTo(trainable);
        var losses = new List<double>();
        using (var trainer = new SftTrainer(policy, optimizer, trainable.Select(p => p.Value)))
            foreach (var batch in NextBatches())
                losses.Add(trainer.Step(batch)["loss/sft"]);
        using var adapted = WeightSet.Snapshot(trainable);
        var metrics = new Dictionary<string, double> { ["inner/loss_first"] = losses[0], ["inner/loss_last"] = losses[^1] };
        return new ParticipantUpdate(id, global.DeltaTo(adapted), examples.Count, metrics);
    }

    /// <summary>The batches of this round's inner steps, in order.</summary>
    public List<List<EncodedExample>> NextBatches()
    {
        var batches = new List<List<EncodedExample>>();
        int size = Math.Min(batchSize, examples.Count);
        for (int s = 0; s < steps; s++)
        {
            batches.Add(Enumerable.Range(0, size).Select(i => examples[(_cursor + i) % examples.Count]).ToList());
            _cursor = (_cursor + size) % examples.Count;
        }
        return batches;
    }

    /// <summary>The parameters that train, by name: all of them, or only the LoRA adapters when they are attached (the base is frozen).</summary>
    public static List<(string Name, Parameter Value)> Trainable(nn.Module model) =>
        model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
}
