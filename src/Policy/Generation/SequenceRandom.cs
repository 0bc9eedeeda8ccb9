namespace Rlft.Policy.Generation;

/// <summary>
/// The sampling randomness of one sequence: a SplitMix64 stream seeded from (generation seed, prompt index), one
/// uniform per generated token. Because each prompt owns its stream, what a prompt samples does not depend on which
/// other prompts share its batch, on the order they finish, or on the batching strategy (static or continuous), and
/// it is the same on every device (the uniforms are drawn on the host).
/// </summary>
internal sealed class SequenceRandom
{
    ulong state;

    public SequenceRandom(long seed, int index)
    {
        // Two rounds of the finaliser decorrelate neighbouring seeds and indices (seed s, prompt i+1 vs seed s+1, prompt i).
        state = Mix(Mix((ulong)seed) ^ ((ulong)(uint)index * 0xD1B54A32D192ED03UL + 1));
    }

    /// <summary>A float in [0, 1) with 24 random bits, the resolution of a float32 uniform.</summary>
    public float NextFloat() => (Next() >> 40) * (1.0f / (1 << 24));

    static long DrawSeed()
    {
        using var draw = TorchSharp.torch.randint(long.MaxValue, [1], dtype: TorchSharp.torch.ScalarType.Int64);
        return draw.item<long>();
    }

    ulong Next()
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// One stream per prompt. Without a seed the base seed is drawn from torch's global generator, so that
    /// <c>torch.manual_seed</c> still makes an unseeded generation repeat.
    /// </summary>
    public static SequenceRandom[] ForPrompts(long? seed, int count, int first = 0)
    {
        long baseSeed = seed ?? DrawSeed();
        return Enumerable.Range(first, count).Select(i => new SequenceRandom(baseSeed, i)).ToArray();
    }
}
