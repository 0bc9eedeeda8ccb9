using FsCheck.Xunit;
using Rlft.Policy.Training;

namespace Rlft.Tests.Federated;

/// <summary>Pairwise masks: exact cancellation in the fixed-point sum, and nothing of an update visible alone.</summary>
public class SecureAggregationTests
{
    /// <summary>Each client's masked update for a round in which all of <paramref name="ids"/> take part (real ECDH keys, HKDF seeds).</summary>
    static List<long[]> MaskAll(IReadOnlyList<string> ids, IReadOnlyList<long[]> encoded, int round)
    {
        var keys = ids.Select(_ => SecureAggregation.NewKey()).ToList();
        try
        {
            var publics = keys.Select(SecureAggregation.PublicKey).ToList();
            return ids.Select((id, i) =>
            {
                var seeds = ids.Select((peer, j) => (peer, j)).Where(p => p.j != i)
                    .ToDictionary(p => p.peer, p => SecureAggregation.PairSeed(keys[i], publics[p.j], id, p.peer, round));
                return SecureAggregation.Mask(encoded[i], id, seeds);
            }).ToList();
        }
        finally { foreach (var k in keys) k.Dispose(); }
    }

    [Property(MaxTest = 25)]
    public void Masks_cancel_bit_for_bit_in_the_sum_for_any_subset_and_shape(int seed, byte clients, byte length)
    {
        int n = 2 + clients % 5, size = 1 + length % 300;
        var rng = new Random(seed);
        var ids = Enumerable.Range(0, n).Select(i => $"client-{rng.Next(1000)}-{i}").ToList();
        var updates = ids.Select(_ => Enumerable.Range(0, size).Select(_ => (float)((rng.NextDouble() - 0.5) * 8)).ToArray()).ToList();
        var encoded = updates.Select(u => SecureAggregation.Encode(u)).ToList();
        var masked = MaskAll(ids, encoded, round: rng.Next(100));

        Assert.Equal(SecureAggregation.Sum(encoded), SecureAggregation.Sum(masked));                  // exact, as integers
        Assert.Equal(SecureAggregation.Sum(encoded), SecureAggregation.Sum(masked.AsEnumerable().Reverse())); // in any arrival order
        for (int i = 0; i < n; i++)
            Assert.True(masked[i].Zip(encoded[i]).Count(p => p.Item1 == p.Item2) <= 1, $"client {i}'s masked update shows its values");
        var decoded = SecureAggregation.Decode(SecureAggregation.Sum(masked));
        for (int k = 0; k < size; k++)
            Assert.True(Math.Abs(updates.Sum(u => (double)u[k]) - decoded[k]) < 1e-5, $"element {k}: {decoded[k]}");
    }

    [Fact]
    public void A_missing_client_leaves_its_masks_in_the_sum()
    {
        var ids = new[] { "a", "b", "c" };
        var encoded = ids.Select(_ => SecureAggregation.Encode(new float[] { 1, 2, 3 })).ToList();
        var masked = MaskAll(ids, encoded, round: 3);
        Assert.NotEqual(SecureAggregation.Sum(encoded.Take(2)), SecureAggregation.Sum(masked.Take(2)));
    }

    [Fact]
    public void Both_ends_of_a_pair_derive_the_same_seed_and_rounds_differ()
    {
        using var a = SecureAggregation.NewKey();
        using var b = SecureAggregation.NewKey();
        var ab = SecureAggregation.PairSeed(a, SecureAggregation.PublicKey(b), "a", "b", 1);
        Assert.Equal(ab, SecureAggregation.PairSeed(b, SecureAggregation.PublicKey(a), "b", "a", 1));
        Assert.NotEqual(ab, SecureAggregation.PairSeed(a, SecureAggregation.PublicKey(b), "a", "b", 2));
    }

    [Fact]
    public void Values_outside_the_fixed_point_range_are_refused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SecureAggregation.Encode(new float[] { 0, float.NaN }));
        Assert.Contains("element 1", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SecureAggregation.Encode(new float[] { 1e9f }));
    }
}
