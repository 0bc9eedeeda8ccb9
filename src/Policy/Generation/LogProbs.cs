using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Generation;

/// <summary>
/// Teacher-forced log-probabilities: the learner's hot path. Only the chosen token's logit and the log-sum-exp
/// are kept per position (logits.gather(target) − logsumexp(logits)), never a full-vocabulary log-softmax, and
/// with left padding only the last C+1 positions run through the LM head for completions of length ≤ C.
/// Everything is differentiable; call under no_grad for inference.
/// </summary>
public static class LogProbs
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
        using var output = model.Forward(inputIds, attentionMask);
        long t = inputIds.shape[1];
        var logits = output.Logits.narrow(1, 0, t - 1);                        // (B, T-1, V)
        var targets = inputIds.narrow(1, 1, t - 1);                            // (B, T-1)
        return OfTargets(logits, targets).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Log-probs of each completion given its prompt, for a batch of (prompt, completion) pairs of any lengths.
    /// Sequences are left-padded, so completions end-align: column j of the result is completion token
    /// j − (C − c_b) of row b, C the longest completion. Prompts must be non-empty. <paramref name="completionMasks"/>
    /// (one flag per completion token) keeps only the tokens that carry loss, e.g. the assistant turns of a
    /// multi-turn completion; without it every completion token counts.
    /// </summary>
    public static CompletionLogProbs OfCompletions(CausalLM model, IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions, int padId,
        IReadOnlyList<bool[]>? completionMasks = null)
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
        if (c == 0)
        {
            var empty = zeros(prompts.Count, 0, device: device);
            var hiddenOnly = model.Forward(batch.InputIds, batch.AttentionMask, logitsToKeep: -1);
            return new CompletionLogProbs(empty.MoveToOuterDisposeScope(), maskT.MoveToOuterDisposeScope(),
                hiddenOnly.HiddenStates.MoveToOuterDisposeScope(), batch.InputIds.MoveToOuterDisposeScope(), batch.AttentionMask.MoveToOuterDisposeScope());
        }
        var output = model.Forward(batch.InputIds, batch.AttentionMask, logitsToKeep: c + 1);
        var logits = output.Logits.narrow(1, 0, c);                            // (B, C, V) predicts positions T-C..T-1
        var targets = batch.InputIds.narrow(1, t - c, c);                      // (B, C)
        var lp = OfTargets(logits, targets) * maskT;                           // (B, C), zero outside completions
        return new CompletionLogProbs(lp.MoveToOuterDisposeScope(), maskT.MoveToOuterDisposeScope(),
            output.HiddenStates.MoveToOuterDisposeScope(), batch.InputIds.MoveToOuterDisposeScope(), batch.AttentionMask.MoveToOuterDisposeScope());
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
public sealed record CompletionLogProbs(Tensor LogProbs, Tensor Mask, Tensor HiddenStates, Tensor InputIds, Tensor AttentionMask) : IDisposable
{
    public void Dispose() { LogProbs.Dispose(); Mask.Dispose(); HiddenStates.Dispose(); InputIds.Dispose(); AttentionMask.Dispose(); }
}
