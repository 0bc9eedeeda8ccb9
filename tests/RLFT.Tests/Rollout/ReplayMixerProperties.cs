using FsCheck;
using FsCheck.Xunit;
using Rlft.Rollout.Data;

namespace Rlft.Tests.Rollout;

/// <summary>
/// Replay: batch k mixes ⌊f·(k+1)·B⌋ − ⌊f·k·B⌋ examples of earlier stages into the current stage's examples, walked
/// in order; the batches are a pure function of the seed and k.
/// </summary>
[Properties(MaxTest = 200)]
public class ReplayMixerProperties
{
    /// <summary>A mixer over int examples: the current stage's are 0..n−1, earlier stage s's are 1000·(s+1) + i.</summary>
    static ReplayMixer<int> Mixer(int fractionPercent, int batchSize, int currentCount, int earlierStages, int seed, out List<List<int>> earlier)
    {
        earlier = Enumerable.Range(0, earlierStages).Select(s => Enumerable.Range(0, 3 + 5 * s).Select(i => 1000 * (s + 1) + i).ToList()).ToList();
        return new ReplayMixer<int>(Enumerable.Range(0, currentCount).ToList(), earlier, fractionPercent / 100.0, batchSize, seed);
    }

    static (int Fraction, int Batch, int Current, int Stages, int Batches) Shape(byte f, byte b, byte n, byte s, byte k) =>
        (f % 100, 1 + b % 64, 1 + n % 50, 1 + s % 3, 1 + k % 20);

    [Property]
    public bool Exactly_the_floor_of_fraction_times_examples_seen_is_replayed(byte f, byte b, byte n, byte s, byte k, int seed)
    {
        var (fraction, batch, current, stages, batches) = Shape(f, b, n, s, k);
        var mixer = Mixer(fraction, batch, current, stages, seed, out _);
        long replayed = 0;
        for (int i = 0; i < batches; i++)
        {
            var mixed = mixer.Batch(i);
            if (mixed.Items.Count != batch) return false;
            int perBatchFloor = fraction * batch / 100;
            if (mixed.Replayed < perBatchFloor || mixed.Replayed > perBatchFloor + 1) return false;
            replayed += mixed.Replayed;
            if (replayed != (long)fraction * (i + 1) * batch / 100) return false;                  // exact: ⌊f·k·B⌋ in integers
        }
        return true;
    }

    [Property]
    public bool Current_examples_are_walked_in_order_and_replayed_ones_come_from_earlier_stages(byte f, byte b, byte n, byte s, byte k, int seed)
    {
        var (fraction, batch, current, stages, batches) = Shape(f, b, n, s, k);
        var mixer = Mixer(fraction, batch, current, stages, seed, out var earlier);
        var earlierSet = earlier.SelectMany(e => e).ToHashSet();
        int next = 0;
        for (int i = 0; i < batches; i++)
        {
            var mixed = mixer.Batch(i);
            foreach (var x in mixed.Items.Take(mixed.Current))
                if (x != next++ % current) return false;
            if (!mixed.Items.Skip(mixed.Current).All(earlierSet.Contains)) return false;
        }
        return true;
    }

    [Property]
    public bool Batches_are_a_function_of_seed_and_index_and_fraction_zero_is_the_plain_stage(byte f, byte b, byte n, byte s, int seed, byte index)
    {
        var (fraction, batch, current, stages, _) = Shape(f, b, n, s, 0);
        var one = Mixer(fraction, batch, current, stages, seed, out _);
        var two = Mixer(fraction, batch, current, stages, seed, out _);
        // Random access: batch `index` drawn alone equals the same batch drawn after all those before it.
        for (int i = 0; i < index % 10; i++) two.Batch(i);
        bool same = one.Batch(index % 10).Items.SequenceEqual(two.Batch(index % 10).Items);
        var plain = Mixer(0, batch, current, stages, seed, out _).Batch(index);
        bool plainIsStage = plain.Replayed == 0 && plain.Items.SequenceEqual(Enumerable.Range(index * batch, batch).Select(x => x % current));
        return same && plainIsStage;
    }

    [Fact]
    public void Every_earlier_stage_is_replayed_about_equally_whatever_its_size()
    {
        var mixer = Mixer(50, 32, 10, 3, seed: 4, out var earlier);
        var counts = Enumerable.Range(0, 200).SelectMany(i => mixer.Batch(i).Items.Skip(mixer.Batch(i).Current))
            .GroupBy(x => x / 1000).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 3200 / 3.0 * 0.85, 3200 / 3.0 * 1.15));
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void A_fraction_outside_zero_to_one_is_refused(double fraction) =>
        Assert.Contains("outside [0, 1)", Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayMixer<int>([1], [[2]], fraction, 4, 0)).Message);

    [Fact]
    public void Replay_without_earlier_examples_is_refused() =>
        Assert.Contains("needs earlier stages", Assert.Throws<ArgumentException>(() => new ReplayMixer<int>([1], [], 0.5, 4, 0)).Message);
}
