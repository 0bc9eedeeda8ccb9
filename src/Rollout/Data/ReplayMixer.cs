namespace Rlft.Rollout.Data;

/// <summary>A batch from <see cref="ReplayMixer{T}"/>: the current stage's examples first, then the replayed ones.</summary>
internal sealed record MixedBatch<T>(IReadOnlyList<T> Items, int Replayed)
{
    /// <summary>Examples of the current stage (the first <c>Items.Count − Replayed</c>).</summary>
    public int Current => Items.Count - Replayed;
}

/// <summary>
/// Experience replay for sequential fine-tuning (as in "rehearsal", Robins, 1995; Rolnick et al., 2019): a fraction of
/// every batch is drawn from earlier stages' examples so that their tasks keep being trained. Batch k is a pure
/// function of (seed, k), so a resumed stage draws the batches it would have drawn:
/// <list type="bullet">
/// <item>after k batches of size B, exactly ⌊fraction · k · B⌋ examples have been replayed (each batch replays
/// ⌊fraction · B⌋ or one more);</item>
/// <item>the current stage's examples are walked in order, cyclically, continuing where the previous batch stopped;</item>
/// <item>a replayed example comes from an earlier stage drawn uniformly (each earlier task weighs the same, whatever
/// its size), then an example of it drawn uniformly, from a generator seeded by (seed, k).</item>
/// </list>
/// </summary>
internal sealed class ReplayMixer<T>
{
    readonly IReadOnlyList<T> _current;
    readonly IReadOnlyList<IReadOnlyList<T>> _earlier;
    readonly int _batchSize;
    readonly int _seed;

    public double Fraction { get; }

    /// <param name="fraction">Share of each batch drawn from earlier stages, in [0, 1).</param>
    public ReplayMixer(IReadOnlyList<T> current, IReadOnlyList<IReadOnlyList<T>> earlier, double fraction, int batchSize, int seed)
    {
        if (!(fraction >= 0 && fraction < 1)) throw new ArgumentOutOfRangeException(nameof(fraction), $"replay: {fraction} is outside [0, 1)");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"replay: the batch size must be positive, got {batchSize}");
        if (current.Count == 0) throw new ArgumentException("replay: the current stage has no examples", nameof(current));
        if (fraction > 0 && (earlier.Count == 0 || earlier.Any(e => e.Count == 0)))
            throw new ArgumentException("replay: a fraction above 0 needs earlier stages, each with examples", nameof(earlier));
        (_current, _earlier, Fraction, _batchSize, _seed) = (current, earlier, fraction, batchSize, seed);
    }

    /// <summary>Examples replayed in the first <paramref name="batches"/> batches: ⌊fraction · batches · B⌋.</summary>
    /// <remarks>In decimal arithmetic: in doubles 0.3 · 9 · 10 is 26.999…, and a batch would replay one too few.</remarks>
    public long ReplayedBefore(long batches) => (long)decimal.Floor((decimal)Fraction * batches * _batchSize);

    /// <summary>Batch <paramref name="index"/> (0-based).</summary>
    public MixedBatch<T> Batch(long index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), "a batch index is never negative");
        long replayedBefore = ReplayedBefore(index);
        int replayed = (int)(ReplayedBefore(index + 1) - replayedBefore);
        long currentBefore = index * _batchSize - replayedBefore;
        var items = new List<T>(_batchSize);
        for (int j = 0; j < _batchSize - replayed; j++) items.Add(_current[(int)((currentBefore + j) % _current.Count)]);
        if (replayed > 0)
        {
            // A fixed mix of seed and index (HashCode.Combine is randomised per process).
            var rng = new Random(unchecked((int)(_seed * 1_000_003L + index * 7_919L)));
            for (int j = 0; j < replayed; j++)
            {
                var stage = _earlier[rng.Next(_earlier.Count)];
                items.Add(stage[rng.Next(stage.Count)]);
            }
        }
        return new MixedBatch<T>(items, replayed);
    }
}
