namespace Rlft.Policy.Training.Trainers;

/// <summary>
/// One sampled completion for the learner: token ids, the log-prob the sampler gave each completion
/// token (temperature 1, untruncated), the sequence score, and the GRPO group it belongs to.
/// </summary>
internal sealed record Experience(int[] PromptTokens, int[] CompletionTokens, float[] SamplerLogprobs, float Score, int Group = 0);

/// <summary>Small helpers shared by the on-policy trainers.</summary>
internal static class ExperienceTensors
{
    /// <summary>Per-row arrays laid end-aligned into (B, C), zeros on the left, matching LogProbs.OfCompletions.</summary>
    public static float[] EndAligned(IReadOnlyList<float[]> rows, int columns)
    {
        var flat = new float[rows.Count * columns];
        for (int b = 0; b < rows.Count; b++)
        {
            var r = rows[b];
            int n = Math.Min(r.Length, columns);
            Array.Copy(r, r.Length - n, flat, b * columns + columns - n, n);
        }
        return flat;
    }

    /// <summary>An empty completion gets the EOS token so every row has at least one action.</summary>
    public static int[] NonEmpty(int[] completion, int eos) => completion.Length > 0 ? completion : [eos];
}
