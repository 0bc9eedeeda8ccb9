using Rlft.Policy.Chat;
using Rlft.Policy.Generation;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// Knowledge distillation: token-level forward KL(teacher ‖ student) over completion positions
/// (Hinton et al., 2015; GKD, Agarwal et al., 2024). Teacher and student share a tokenizer; the teacher
/// may be larger. Sequences come from a dataset or from the student's own samples.
/// </summary>
internal sealed class DistillTrainer : IDisposable
{
    readonly PolicyModel _student;
    readonly PolicyModel _teacher;
    readonly DistillOptions _o;
    public TrainingOptimizer Optimizer { get; }
    /// <summary>The data-parallel group this trainer steps with (solo by default): each member trains on its share of every batch.</summary>
    public Collectives.LearnerGroup Group { get => Optimizer.Group; set => Optimizer.Group = value; }

    public DistillTrainer(PolicyModel student, PolicyModel teacher, DistillOptions options, OptimizerOptions optimizer)
    {
        if (student.Model.Config.VocabSize != teacher.Model.Config.VocabSize)
            throw new ArgumentException($"teacher vocabulary ({teacher.Model.Config.VocabSize}) differs from the student's ({student.Model.Config.VocabSize}): token-level distillation needs a shared tokenizer");
        (_student, _teacher, _o) = (student, teacher, options.Validate());
        foreach (var p in teacher.Model.parameters()) p.requires_grad = false;
        Optimizer = new TrainingOptimizer(student.Model.parameters(), optimizer);
    }

    /// <summary>
    /// (B, C, H) final hidden states predicting each end-aligned completion token, and the (B, C) loss mask. The LM
    /// heads run later, chunk by chunk (<see cref="ChunkedLmHead.ForwardKl"/>): no (B, C, V) logits are kept.
    /// </summary>
    static (Tensor Hidden, Tensor Mask) CompletionHidden(PolicyModel m, IReadOnlyList<EncodedExample> examples)
    {
        int c = examples.Max(x => x.Completion.Length);
        using var batch = TokenBatch.LeftPad(examples.Select(e => e.Ids).ToList(), m.Tokenizer.PadId, m.Device);
        using var output = m.Model.Forward(batch.InputIds, batch.AttentionMask, logitsToKeep: -1);
        long t = batch.InputIds.shape[1];
        var mask = new float[examples.Count * c];
        for (int b = 0; b < examples.Count; b++)
        {
            var loss = examples[b].CompletionMask;
            for (int k = 0; k < loss.Length; k++) mask[b * c + c - loss.Length + k] = loss[k] ? 1 : 0;
        }
        return (output.HiddenStates.narrow(1, t - c - 1, c).clone(), tensor(mask, [examples.Count, c], device: m.Device));
    }

    /// <summary>Masked mean forward KL(teacher ‖ student) over the loss tokens, from the two models' hidden states.</summary>
    LossResult KlLoss(Tensor student, Tensor teacher, Tensor mask)
    {
        var perToken = ChunkedLmHead.ForwardKl(_student.Model, student, _teacher.Model, teacher, _o.Temperature);   // (B, C)
        var loss = Masked.Mean(perToken, mask);
        using var _ = no_grad();
        double kl = loss.ToDouble();
        return new LossResult(loss, new Dictionary<string, double> { ["loss/distill"] = kl, ["distill/kl"] = kl });
    }

    /// <summary>Forward KL per completion token, averaged; no update.</summary>
    public double Kl(IReadOnlyList<(string Prompt, string Completion)> batch) => Kl(Encode(batch));

    /// <summary>Forward KL per loss-carrying token, averaged; no update.</summary>
    public double Kl(IReadOnlyList<EncodedExample> examples)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (s, mask) = CompletionHidden(_student, examples);
        var (t, _) = CompletionHidden(_teacher, examples);
        return KlLoss(s, t, mask).Stats["distill/kl"];
    }

    public Dictionary<string, double> Step(IReadOnlyList<(string Prompt, string Completion)> batch) => Step(Encode(batch));

    /// <summary>
    /// One update on the loss-carrying tokens of encoded examples (the teacher shares the student's tokenizer). In a group
    /// every member is given the whole batch and trains on its share; the loss is the token mean over the whole batch.
    /// </summary>
    public Dictionary<string, double> Step(IReadOnlyList<EncodedExample> whole)
    {
        using var scope = NewDisposeScope();
        var examples = GroupShare.Of(Group, whole);
        Tensor teacher;
        using (no_grad()) { _teacher.Model.eval(); teacher = CompletionHidden(_teacher, examples).Hidden; }
        _student.Model.train();
        var (student, mask) = CompletionHidden(_student, examples);
        var r = KlLoss(student, teacher, mask);
        double weight = GroupShare.TokenWeight(Group, mask);
        Optimizer.Backward(GroupShare.Scale(r.Loss, weight));
        var report = Optimizer.Step();
        return SftTrainer.Merge(Group.Weighted(r.Stats, weight), report.Stats);
    }

    /// <summary>Each pair as one text with the student's tokenizer (shared with the teacher), completion-only loss.</summary>
    List<EncodedExample> Encode(IReadOnlyList<(string Prompt, string Completion)> batch) =>
        batch.Select(b => _student.Encoder.PromptCompletion(b.Prompt, b.Completion)).ToList();

    public void Dispose() => Optimizer.Dispose();
}
