namespace Rlft.Policy.Generation;

/// <summary>How to sample. Temperature 0 is greedy (argmax).</summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to generate per sequence at most (default 64).</summary>
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>Softmax temperature; 0 = greedy. Default 1.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep only the k most likely tokens; 0 = off.</summary>
    public int TopK { get; init; }
    /// <summary>Nucleus sampling: keep the smallest set whose probability reaches p; 1 = off.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>
    /// Sampling seed. Prompt i of a call samples from its own stream seeded from (Seed, i) (<see cref="SequenceRandom"/>),
    /// so its completion does not depend on the other prompts or on <see cref="Slots"/>; null draws the seed from torch's global RNG.
    /// </summary>
    public long? Seed { get; init; }
    /// <summary>The sampling-stream index of the first prompt (default 0): a prompt decoded alone as index i samples what it samples as prompt i of a batch.</summary>
    public int FirstPromptIndex { get; init; }
    /// <summary>
    /// Continuous batching: decode at most this many sequences at once, a finished one's slot going to the next
    /// prompt (<see cref="ContinuousGenerator"/>). 0 (default) decodes all prompts as one static batch.
    /// </summary>
    public int Slots { get; init; }
    /// <summary>Decode with a preallocated KV cache (default) or recompute the whole sequence each step.</summary>
    public bool UseKvCache { get; init; } = true;
    /// <summary>Tokens that end a sequence; null = the tokenizer's EOS passed to Generate.</summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }

    public void Validate()
    {
        if (MaxNewTokens < 1) throw new ArgumentException($"max-new-tokens must be at least 1, got {MaxNewTokens}");
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException($"temperature must be ≥ 0, got {Temperature}");
        if (TopK < 0) throw new ArgumentException($"top-k must be ≥ 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}");
        if (FirstPromptIndex < 0) throw new ArgumentException($"first prompt index must be ≥ 0, got {FirstPromptIndex}");
        if (Slots < 0) throw new ArgumentException($"slots must be ≥ 0 (0 = one static batch), got {Slots}");
    }
}

/// <summary>
/// Generated tokens per sequence (stop token included when one ended it) and, per token, two log-probs:
/// <see cref="LogProbs"/> under the model's own distribution (temperature 1, no truncation: what teacher-forced
/// log-probs recompute, what PPO's ratio needs) and <see cref="SampledLogProbs"/> under the distribution the token
/// was actually drawn from (after temperature/top-k/top-p; 0 for greedy).
/// </summary>
public sealed record GenerationResult(int[][] Tokens, float[][] LogProbs, float[][] SampledLogProbs, bool[] Stopped);
