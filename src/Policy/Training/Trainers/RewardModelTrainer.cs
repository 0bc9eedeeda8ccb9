using Rlft.Policy.Chat;
using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// A reward model: a causal-LM trunk with a scalar head read at the last real token
/// (transformers' *ForSequenceClassification), trained with the Bradley–Terry loss on preference pairs.
/// </summary>
internal sealed class RewardModel
{
    public PolicyModel Trunk { get; }
    public RewardHead Head { get; }

    public RewardModel(PolicyModel trunk, RewardHead head) => (Trunk, Head) = (trunk, head);

    public IEnumerable<TorchSharp.Modules.Parameter> Parameters() => Trunk.Model.parameters().Concat(Head.parameters());

    /// <summary>The parameters that train, by name: the trunk's (all of it, or its LoRA adapters), then the head's as <c>head.…</c>.</summary>
    public List<(string Name, TorchSharp.Modules.Parameter Value)> Trainable() =>
        Regularization.TrainableParameters.Of(Trunk.Model).Select(p => (p.Name, p.Parameter))
            .Concat(Head.named_parameters().Where(p => p.parameter.requires_grad).Select(p => ("head." + p.name, p.parameter))).ToList();

    /// <summary>Scores (B,) for prompt+completion texts, each encoded as one text ending in EOS; differentiable.</summary>
    public Tensor Score(IReadOnlyList<(string Prompt, string Completion)> items) =>
        Score(items.Select(i => Trunk.Encoder.PromptCompletion(i.Prompt, i.Completion)).ToList());

    /// <summary>Scores (B,) read at the last token of each encoded sequence; differentiable.</summary>
    public Tensor Score(IReadOnlyList<EncodedExample> items)
    {
        using var scope = NewDisposeScope();
        using var batch = TokenBatch.LeftPad(items.Select(i => i.Ids).ToList(), Trunk.Tokenizer.PadId, Trunk.Device);
        using var output = Trunk.Model.Forward(batch.InputIds, batch.AttentionMask, logitsToKeep: -1);
        return Head.forward(output.HiddenStates, batch.AttentionMask).MoveToOuterDisposeScope();
    }

    /// <summary>Scores as floats, without gradients, in batches of <paramref name="batchSize"/>.</summary>
    public float[] ScoreTexts(IReadOnlyList<(string Prompt, string Completion)> items, int batchSize = 64) =>
        ScoreExamples(items.Select(i => Trunk.Encoder.PromptCompletion(i.Prompt, i.Completion)).ToList(), batchSize);

    /// <summary>
    /// Scores of completions to prompts, each as this model sees it: a conversation gets the completion as the
    /// assistant's reply, rendered with the reward model's own template and tokenizer (<see cref="PolicyModel.Encoder"/>).
    /// </summary>
    public float[] ScoreSamples(IReadOnlyList<(PromptInput Prompt, string Completion)> items, int batchSize = 64) =>
        ScoreExamples(items.Select(i => i.Prompt.WithCompletion(Trunk.Encoder, i.Completion)).ToList(), batchSize);

    /// <summary>Scores of encoded sequences as floats, without gradients, in batches of <paramref name="batchSize"/>.</summary>
    public float[] ScoreExamples(IReadOnlyList<EncodedExample> items, int batchSize = 64)
    {
        using var _ = no_grad();
        Trunk.Model.eval();
        var scores = new List<float>(items.Count);
        for (int i = 0; i < items.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            scores.AddRange(Score(items.Skip(i).Take(batchSize).ToList()).cpu().data<float>().ToArray());
        }
        return scores.ToArray();
    }
}

/// <summary>Bradley–Terry training of a <see cref="RewardModel"/> on (prompt, chosen, rejected) triples.</summary>
internal sealed class RewardModelTrainer : IDisposable
{
    readonly RewardModel _model;
    readonly RewardModelOptions _options;
    public TrainingOptimizer Optimizer { get; }
    /// <summary>Penalties on the parameters added to every step's loss (FedProx's proximal term); none by default.</summary>
    public IReadOnlyList<Regularization.IParameterPenalty> Penalties { get; set; } = [];
    /// <summary>The data-parallel group this trainer steps with (solo by default): each member trains on its share of the pairs.</summary>
    public Collectives.LearnerGroup Group { get => Optimizer.Group; set => Optimizer.Group = value; }

    public RewardModelTrainer(RewardModel model, RewardModelOptions options, OptimizerOptions optimizer)
    {
        (_model, _options) = (model, options.Validate());
        Optimizer = new TrainingOptimizer(model.Parameters(), optimizer);
    }

    public Dictionary<string, double> Step(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> batch) =>
        Step(batch.Select(b => new EncodedPair(_model.Trunk.Encoder.PromptCompletion(b.Prompt, b.Chosen), _model.Trunk.Encoder.PromptCompletion(b.Prompt, b.Rejected))).ToList());

    /// <summary>
    /// One step on a batch of pairs. In a group every member is given the whole batch and trains on its share of the
    /// pairs; the loss is the (weighted) mean over the whole batch, the statistics means over all its pairs.
    /// </summary>
    public Dictionary<string, double> Step(IReadOnlyList<EncodedPair> whole)
    {
        using var scope = NewDisposeScope();
        var batch = GroupShare.Of(Group, whole);
        _model.Trunk.Model.train();
        // Chosen and rejected in one forward: [c0..cn, r0..rn].
        var items = batch.Select(b => b.Chosen).Concat(batch.Select(b => b.Rejected)).ToList();
        var scores = _model.Score(items);
        var chosen = scores.narrow(0, 0, batch.Count);
        var rejected = scores.narrow(0, batch.Count, batch.Count);
        var margin = _options.Margin > 0 ? full(batch.Count, _options.Margin, device: scores.device) : null;
        var (target, weight) = DpoTrainer.Labels(batch, scores.device);
        var result = Losses.RewardModelLoss(chosen, rejected, margin, target, weight);
        // Σ w·ℓ / Σ w over the whole batch: this share's weighted mean times its part of Σ w; the centring term is a plain mean over pairs.
        double pairShare = (double)batch.Count / whole.Count;
        double lossShare = whole.All(p => p.IsPlain) ? pairShare : batch.Sum(p => p.Weight) / whole.Sum(p => p.Weight);
        var loss = GroupShare.Scale(result.Loss, lossShare);
        if (_options.CenterRewardsCoef > 0) loss = loss + GroupShare.Scale(_options.CenterRewardsCoef * (chosen + rejected).square().mean(), pairShare);
        var (total, penalties) = Regularization.Penalties.Add(loss, GroupShare.Penalties(Group, Penalties));
        Optimizer.Backward(total);
        var report = Optimizer.Step();
        var stats = Group.Weighted(result.Stats.Where(s => s.Key != "loss/reward_model").ToDictionary(), pairShare);
        if (result.Stats.TryGetValue("loss/reward_model", out var l)) stats["loss/reward_model"] = Group.IsSolo ? l : Group.Sum(l * lossShare)[0];
        return SftTrainer.Merge(stats, penalties, report.Stats);
    }

    /// <summary>Share of held-out pairs where the chosen completion scores higher.</summary>
    public double Accuracy(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> pairs) => Evaluate(pairs)["eval/accuracy"];

    /// <summary>Held-out figures: the share of pairs scored the right way round (<c>eval/accuracy</c>) and the mean score margin (<c>eval/margin</c>).</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<(string Prompt, string Chosen, string Rejected)> pairs) =>
        Evaluate(pairs.Select(p => new EncodedPair(_model.Trunk.Encoder.PromptCompletion(p.Prompt, p.Chosen), _model.Trunk.Encoder.PromptCompletion(p.Prompt, p.Rejected))).ToList());

    /// <summary>Held-out figures of encoded pairs (see the plain-text overload).</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<EncodedPair> pairs)
    {
        var c = _model.ScoreExamples(pairs.Select(p => p.Chosen).ToList());
        var r = _model.ScoreExamples(pairs.Select(p => p.Rejected).ToList());
        return new()
        {
            ["eval/accuracy"] = c.Zip(r).Count(x => x.First > x.Second) / (double)pairs.Count,
            ["eval/margin"] = c.Zip(r).Average(x => (double)x.First - x.Second),
        };
    }

    public void Dispose() => Optimizer.Dispose();
}
