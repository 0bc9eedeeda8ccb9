namespace Rlft.Policy.Chat;

/// <summary>
/// One training sequence exactly as the model sees it: the ids of the whole text encoded once, where the prompt ends,
/// and which tokens carry loss.
/// </summary>
/// <param name="Ids">(T) every token, prompt first; no BOS or other post-processor token inside.</param>
/// <param name="PromptLength">Tokens before the first loss-carrying one (≥ 1, so every loss token has a context).</param>
/// <param name="LossMask">(T) true on the tokens the loss covers; always false inside the prompt.</param>
internal sealed record EncodedExample(int[] Ids, int PromptLength, bool[] LossMask)
{
    public int[] Prompt => Ids[..PromptLength];
    public int[] Completion => Ids[PromptLength..];
    /// <summary>The loss mask over <see cref="Completion"/>.</summary>
    public bool[] CompletionMask => LossMask[PromptLength..];
    public int LossTokens => LossMask.Count(x => x);

    /// <summary>A key equal for equal sequences and masks (e.g. for caching reference log-probs).</summary>
    public string Key => $"{PromptLength}|{string.Join(',', Ids)}|{string.Concat(LossMask.Select(m => m ? '1' : '0'))}";

    /// <summary>
    /// The same sequence with loss on every token that has a context (all but the first): what training on the whole
    /// text means (<c>completion-only-loss = off</c>, or <c>assistant-only-loss = off</c> for <c>messages</c>).
    /// </summary>
    public EncodedExample WithLossOnAll() => new(Ids, 1, [false, .. Enumerable.Repeat(true, Ids.Length - 1)]);

    public EncodedExample Validate()
    {
        if (LossMask.Length != Ids.Length) throw new ArgumentException($"loss mask has {LossMask.Length} entries for {Ids.Length} tokens");
        if (PromptLength < 1 || PromptLength > Ids.Length) throw new ArgumentException($"prompt length {PromptLength} outside [1, {Ids.Length}]");
        if (LossMask.AsSpan(0, PromptLength).Contains(true)) throw new ArgumentException("a prompt token carries loss");
        return this;
    }
}

/// <summary>
/// A preference pair as the model sees it: each side is the prompt and its completion as one text; the loss masks
/// select what is compared. <see cref="Target"/> is P(chosen ≻ rejected) in [½, 1] (1: a hard preference, ½: a tie)
/// and <see cref="Weight"/> the pair's weight in the batch mean, as the feedback export's <c>label</c> and
/// <c>weight</c> give them; the DPO and reward-model losses use them.
/// </summary>
internal sealed record EncodedPair(EncodedExample Chosen, EncodedExample Rejected)
{
    public double Target { get; init; } = 1;
    public double Weight { get; init; } = 1;

    /// <summary>True when the pair is a hard preference of weight 1 (the plain losses apply).</summary>
    public bool IsPlain => Target == 1 && Weight == 1;
}

/// <summary>An example that cannot be encoded as asked (e.g. a template that is not prefix-stable); one line, no stack trace.</summary>
internal sealed class ExampleEncodingException(string message) : Exception(message);
