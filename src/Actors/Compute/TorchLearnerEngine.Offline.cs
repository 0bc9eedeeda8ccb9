using Rlft.Actors.Compute.Sessions;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Policy.Chat;
using Rlft.Policy.Training.Trainers;

namespace Rlft.Actors.Compute;

/// <summary>Offline stages run to the end in the learner, each by its session (<see cref="OfflineSessions"/>).</summary>
internal sealed partial class TorchLearnerEngine
{
    /// <summary>The SFT-format examples of the last sft or distill stage as they were trained on (tests read the masks).</summary>
    internal IReadOnlyList<EncodedExample> TrainedExamples { get; set; } = [];

    /// <summary>What each finished SFT stage left to be measured again after the stages that follow it.</summary>
    internal List<RetentionProbe> Retention { get; } = [];

    /// <summary>Each finished SFT stage's training examples, by stage index (what replay mixes in and EWC's Fisher is estimated on).</summary>
    internal SortedDictionary<int, IReadOnlyList<EncodedExample>> SftExamples { get; } = new();

    public StageCompleted RunOfflineStage(StageSpec stage, Action<StageProgress> progress, CancellationToken cancellationToken)
    {
        _trainable.Model.GradientCheckpointing = _policy.Model.GradientCheckpointing = stage.GradientCheckpointing;   // distillation trains _policy
        var run = new OfflineRun(this, stage, progress, cancellationToken);
        var earlier = Retention.ToList();
        switch (OfflineSessions.Run(run))
        {
            case OfflineProduct.RewardModel: RewardModelVersion = RewardModelVersion < 0 ? 1 : RewardModelVersion + 1; break;
            case OfflineProduct.Policy: PolicyVersion++; break;
        }
        // Every earlier SFT stage's held-out figures again, now that this stage changed the policy.
        if (stage.Kind is not (StageKind.RewardModel or StageKind.Adapt) && !stage.TrainsEncoder)
            foreach (var probe in earlier) run.Measure("after", () => probe.Measure(_trainable, _policy.WithEncoder(run.Encoder), EvalSampling(stage)));
        return new StageCompleted(stage.Index, PolicyVersion, RewardModelVersion, run.Figures);
    }

    // The federated stage being run (the server's side: global weights, outer loop, held-out figures).
    FederatedSession? _federated;

    public string ModelHash { get; } = "";

    public float[] BeginFederated(StageSpec stage)
    {
        _federated?.Dispose();
        _federated = null;
        _federated = FederatedSession.Begin(this, stage);
        return _federated.Global();
    }

    public (float[] Global, Dictionary<string, double> Metrics) ApplyFederatedRound(StageSpec stage, Coordination.AggregateRound round)
    {
        var session = Federated(stage);
        var metrics = session.Apply(round);
        if (stage.Kind != StageKind.RewardModel) PolicyVersion++;
        return (session.Global(), metrics);
    }

    public StageCompleted EndFederated(StageSpec stage)
    {
        var figures = Federated(stage).End();
        if (_federated!.TakeRewardModel() is { } rm)
        {
            ReplaceRewardModel(rm, Job.ChatTemplateFor(stage));
            RewardModelVersion = RewardModelVersion < 0 ? 1 : RewardModelVersion + 1;
        }
        _federated.Dispose();
        _federated = null;
        return new StageCompleted(stage.Index, PolicyVersion, RewardModelVersion, figures);
    }

    FederatedSession Federated(StageSpec stage) =>
        _federated is { } s && s.Stage == stage.Index ? s : throw new InvalidOperationException($"federated stage {stage.Index} has not begun in the learner");

    /// <summary>The job's reward model from now on (a reward-model stage's), trained with the chat template under <paramref name="templateKey"/>.</summary>
    internal RewardModel ReplaceRewardModel(RewardModel rm, string? templateKey)
    {
        _rm?.Trunk.Model.Dispose();
        _rmTemplate = TemplateSource(templateKey);
        return _rm = rm;
    }
}
