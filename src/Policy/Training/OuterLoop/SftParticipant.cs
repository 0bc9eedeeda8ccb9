using Rlft.Policy.Chat;
using Rlft.Policy.Training.Regularization;
using Rlft.Policy.Training.Trainers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>
/// A participant whose inner steps train on its own examples: a task in meta-learning, or a client's local training.
/// Each round starts from the global weights with a fresh optimizer (inner-loop state does not carry across rounds),
/// takes <c>steps</c> batches of <c>batchSize</c> examples — continuing through its examples round after round,
/// wrapping around — and returns <c>adapted − global</c>, weighted by its number of examples. With <see cref="Mu"/> &gt; 0
/// every inner step's loss carries FedProx's proximal term toward the round's global weights (<see cref="ProximalPenalty"/>).
/// The learning rate follows <see cref="ScheduleRounds"/>: over the whole run of rounds, or within each round.
/// </summary>
internal abstract class InnerLoopParticipant<T>(string id, PolicyModel policy, IReadOnlyList<T> examples, OptimizerOptions optimizer, int steps, int batchSize) : IParticipant
{
    int _cursor;

    public string Id => id;
    public IReadOnlyList<T> Examples => examples;
    /// <summary>FedProx's μ: the weight of the proximal term μ/2 · ‖w − w_global‖² in every inner step; 0 (the default) leaves it out.</summary>
    public double Mu { get; init; }
    protected PolicyModel Policy => policy;

    /// <summary>
    /// With a value (a federated stage's rounds), the optimizer's schedule spans that many rounds of <c>steps</c> local
    /// updates — the stage's warmup and decay run over the federation as they would over a central run of as many
    /// updates — and round r's optimizer starts at update r·steps of it. Without one (meta-learning's inner loops),
    /// every round runs the schedule over its own steps.
    /// </summary>
    public int? ScheduleRounds { get; init; }

    /// <summary>The inner optimizer's settings in <paramref name="round"/> (see <see cref="ScheduleRounds"/>).</summary>
    public OptimizerOptions OptimizerFor(int round) => ScheduleRounds is { } rounds
        ? optimizer with { TotalSteps = rounds * steps, ScheduleOffset = Math.Clamp(round, 0, rounds - 1) * steps }
        : optimizer with { TotalSteps = steps, WarmupSteps = Math.Min(optimizer.WarmupSteps, steps - 1) };

    /// <summary>
    /// The inner loop's trainer over <paramref name="trainable"/> (the global weights are in them already): one step per
    /// batch, returning its loss; <paramref name="penalties"/> go on every step's loss.
    /// </summary>
    protected abstract IInnerTrainer Begin(IReadOnlyList<(string Name, Parameter Value)> trainable, IReadOnlyList<IParameterPenalty> penalties, OptimizerOptions optimizer);

    /// <summary>A round's trainer: <see cref="Step"/> gives the batch's training loss.</summary>
    protected interface IInnerTrainer : IDisposable
    {
        double Step(List<T> batch);
    }

    /// <summary>What the participant trains and the global weights are, by name (by default the policy's trainable parameters).</summary>
    public virtual IReadOnlyList<(string Name, Parameter Value)> Trainable() =>
        TrainableParameters.Of(policy.Model).Select(p => (p.Name, p.Parameter)).ToList();

    public ParticipantUpdate Run(WeightSet global, int round)
    {
        if (examples.Count == 0) throw new InvalidOperationException($"participant {id} has no examples");
        var trainable = Trainable();
        global.CopyTo(trainable);
        var losses = new List<double>();
        using var proximal = Mu > 0 ? new ProximalPenalty(trainable, global, Mu) : null;
        using (var trainer = Begin(trainable, proximal is null ? [] : [proximal], OptimizerFor(round)))
            foreach (var batch in NextBatches())
                losses.Add(trainer.Step(batch));
        using var adapted = WeightSet.Snapshot(trainable);
        var metrics = new Dictionary<string, double> { ["inner/loss_first"] = losses[0], ["inner/loss_last"] = losses[^1] };
        return new ParticipantUpdate(id, global.DeltaTo(adapted), examples.Count, metrics);
    }

    /// <summary>The batches of this round's inner steps, in order.</summary>
    public List<List<T>> NextBatches()
    {
        var batches = new List<List<T>>();
        int size = Math.Min(batchSize, examples.Count);
        for (int s = 0; s < steps; s++)
        {
            batches.Add(Enumerable.Range(0, size).Select(i => examples[(_cursor + i) % examples.Count]).ToList());
            _cursor = (_cursor + size) % examples.Count;
        }
        return batches;
    }
}

/// <summary>Inner steps of supervised fine-tuning (next-token loss on the loss-carrying tokens).</summary>
/// <param name="policy">The model the participant trains in place; the global weights are written into its trainable parameters first.</param>
internal sealed class SftParticipant(string id, PolicyModel policy, IReadOnlyList<EncodedExample> examples, OptimizerOptions optimizer, int steps, int batchSize)
    : InnerLoopParticipant<EncodedExample>(id, policy, examples, optimizer, steps, batchSize)
{
    protected override IInnerTrainer Begin(IReadOnlyList<(string Name, Parameter Value)> trainable, IReadOnlyList<IParameterPenalty> penalties, OptimizerOptions optimizer) =>
        new Inner(new SftTrainer(Policy, optimizer, trainable.Select(p => p.Value)) { Penalties = penalties });

    sealed class Inner(SftTrainer trainer) : IInnerTrainer
    {
        public double Step(List<EncodedExample> batch) => trainer.Step(batch)["loss/sft"];
        public void Dispose() => trainer.Dispose();
    }
}

/// <summary>
/// Inner steps of DPO on preference pairs, against the round's global weights as the reference (a frozen copy made at
/// the start of each round: the participant's policy starts equal to its reference, as a DPO stage does).
/// </summary>
internal sealed class DpoParticipant(string id, PolicyModel policy, IReadOnlyList<EncodedPair> pairs, DpoOptions dpo, OptimizerOptions optimizer, int steps, int batchSize)
    : InnerLoopParticipant<EncodedPair>(id, policy, pairs, optimizer, steps, batchSize)
{
    protected override IInnerTrainer Begin(IReadOnlyList<(string Name, Parameter Value)> trainable, IReadOnlyList<IParameterPenalty> penalties, OptimizerOptions optimizer)
    {
        var reference = Policy.FrozenCopy();
        try { return new Inner(new DpoTrainer(Policy, new FrozenReference(reference), dpo, optimizer, trainable.Select(p => p.Value)) { Penalties = penalties }, reference); }
        catch { reference.Model.Dispose(); throw; }
    }

    sealed class Inner(DpoTrainer trainer, PolicyModel reference) : IInnerTrainer
    {
        public double Step(List<EncodedPair> batch) => trainer.Step(batch)["loss/dpo"];
        public void Dispose() { trainer.Dispose(); reference.Model.Dispose(); }
    }
}

/// <summary>
/// Inner steps of reward-model training (Bradley–Terry on preference pairs): the trunk's trainable parameters (all of
/// them, or its LoRA adapters) and the scalar head are the global weights.
/// </summary>
internal sealed class RewardModelParticipant(string id, RewardModel model, IReadOnlyList<EncodedPair> pairs, RewardModelOptions options, OptimizerOptions optimizer, int steps, int batchSize)
    : InnerLoopParticipant<EncodedPair>(id, model.Trunk, pairs, optimizer, steps, batchSize)
{
    public override IReadOnlyList<(string Name, Parameter Value)> Trainable() => model.Trainable();

    protected override IInnerTrainer Begin(IReadOnlyList<(string Name, Parameter Value)> trainable, IReadOnlyList<IParameterPenalty> penalties, OptimizerOptions optimizer) =>
        new Inner(new RewardModelTrainer(model, options, optimizer) { Penalties = penalties });

    sealed class Inner(RewardModelTrainer trainer) : IInnerTrainer
    {
        public double Step(List<EncodedPair> batch) => trainer.Step(batch)["loss/reward_model"];
        public void Dispose() => trainer.Dispose();
    }
}
