using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Generation;

/// <summary>
/// Teacher-forced log-probabilities: the learner's hot path. Only the chosen token's logit and the log-sum-exp
/// are kept per position (logits.gather(target) − logsumexp(logits)), never a full-vocabulary log-softmax; the LM
/// head runs a chunk of positions at a time (<see cref="ChunkedLmHead"/>), so no batch × length × vocabulary logits
/// exist at once, and with left padding only the C positions that predict completions of length ≤ C reach it.
/// Everything is differentiable; call under no_grad for inference.
/// </summary>
internal static class LogProbs
{
    /// <summary>log softmax(logits)[target]: logits (..., V), targets (...) int64 → (...) float32.</summary>
    /// <remarks>Naive equivalent: <c>logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)</c>.</remarks>
    public static Tensor OfTargets(Tensor logits, Tensor targets)
    {
        using var scope = NewDisposeScope();
        var chosen = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1);    // (...)
        var lse = logits.logsumexp(-1, keepdim: false);                        // (...)
        return (chosen - lse).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Log-prob of each token given the ones before it: ids (B, T), mask (B, T) → (B, T − 1), entry t is
    /// log p(ids[t + 1] | ids[..t]). Positions whose target is padding hold meaningless values; multiply by
    /// mask[:, 1:].
    /// </summary>
    public static Tensor OfSequences(CausalLM model, Tensor inputIds, Tensor? attentionMask)
    {
        using var scope = NewDisposeScope();
        using var output = model.Forward(inputIds, attentionMask, logitsToKeep: -1);
        long t = inputIds.shape[1];
        var hidden = output.HiddenStates.narrow(1, 0, t - 1);                  // (B, T-1, H)
        var targets = inputIds.narrow(1, 1, t - 1);                            // (B, T-1)
        return ChunkedLmHead.TokenStats(model, hidden, targets).LogProbs.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Log-probs of each completion given its prompt, for a batch of (prompt, completion) pairs of any lengths.
    /// Sequences are left-padded, so completions end-align: column j of the result is completion token
    /// j − (C − c_b) of row b, C the longest completion. Prompts must be non-empty. <paramref name="completionMasks"/>
    /// (one flag per completion token) keeps only the tokens that carry loss, e.g. the assistant turns of a
    /// multi-turn completion; without it every completion token counts. With <paramref name="entropy"/> the result also
    /// carries the policy's entropy at each completion position, from the same pass through the LM head.
    /// </summary>
    public static CompletionLogProbs OfCompletions(CausalLM model, IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions, int padId,
        IReadOnlyList<bool[]>? completionMasks = null, bool entropy = false)
    {
        if (prompts.Count != completions.Count) throw new ArgumentException($"{prompts.Count} prompts but {completions.Count} completions");
        if (completionMasks is not null)
            for (int i = 0; i < completions.Count; i++)
                if (completionMasks[i].Length != completions[i].Length) throw new ArgumentException($"completion {i} has {completions[i].Length} tokens but {completionMasks[i].Length} mask entries");
        for (int i = 0; i < prompts.Count; i++)
            if (prompts[i].Length == 0) throw new ArgumentException($"prompt {i} is empty: the first completion token needs a context token (e.g. BOS or EOS)");
        using var scope = NewDisposeScope();
        var device = model.WordEmbeddings.device;
        var batch = TokenBatch.LeftPad(prompts.Zip(completions, (p, c) => p.Concat(c).ToArray()).ToList(), padId, device);
        int c = completions.Max(x => x.Length);
        long t = batch.Length;
        var mask = new float[prompts.Count * c];
        for (int b = 0; b < prompts.Count; b++)
            for (int j = c - completions[b].Length, k = 0; j < c; j++, k++)
                mask[b * c + j] = completionMasks is null || completionMasks[b][k] ? 1f : 0f;
        var maskT = tensor(mask, [prompts.Count, c], device: device);
        var output = model.Forward(batch.InputIds, batch.AttentionMask, logitsToKeep: -1);
        var hidden = output.HiddenStates.narrow(1, t - c - 1, c);              // (B, C, H) predicts positions T-C..T-1
        var targets = batch.InputIds.narrow(1, t - c, c);                      // (B, C)
        var (lp, ent) = ChunkedLmHead.TokenStats(model, hidden, targets, entropy);
        lp = lp * maskT;                                                       // (B, C), zero outside completions
        return new CompletionLogProbs(lp.MoveToOuterDisposeScope(), maskT.MoveToOuterDisposeScope(),
            output.HiddenStates.MoveToOuterDisposeScope(), batch.InputIds.MoveToOuterDisposeScope(), batch.AttentionMask.MoveToOuterDisposeScope())
        {
            Entropy = (ent is null ? null : ent * maskT)?.MoveToOuterDisposeScope(),
        };
    }
}

/// <summary>
/// Result of <see cref="LogProbs.OfCompletions"/>. Completion columns are the last C of the sequence: hidden state
/// at sequence position T − C − 1 + j predicted completion column j (what a value head reads for that action).
/// </summary>
/// <param name="LogProbs">(B, C) log p of each completion token, 0 where Mask is 0.</param>
/// <param name="Mask">(B, C) float, 1 on completion tokens.</param>
/// <param name="HiddenStates">(B, T, H) final hidden states of the whole sequence.</param>
/// <param name="InputIds">(B, T) left-padded prompt+completion ids.</param>
/// <param name="AttentionMask">(B, T) 1 = real token.</param>
internal sealed record CompletionLogProbs(Tensor LogProbs, Tensor Mask, Tensor HiddenStates, Tensor InputIds, Tensor AttentionMask) : IDisposable
{
    /// <summary>(B, C) entropy of the policy at each completion position, 0 where Mask is 0; only when asked for.</summary>
    public Tensor? Entropy { get; init; }

    public void Dispose() { LogProbs.Dispose(); Mask.Dispose(); HiddenStates.Dispose(); InputIds.Dispose(); AttentionMask.Dispose(); Entropy?.Dispose(); }
}
