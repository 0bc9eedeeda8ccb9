using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// Preallocated keys and values for every layer, (B, KV, capacity, D), plus which slots hold real tokens and the
/// next position id of each sequence. Writing a step is a copy into a slice; nothing grows or reallocates.
/// </summary>
internal sealed class KvCache : IDisposable
{
    readonly Tensor[] keys, values;    // per layer (B, KV, S, D)
    readonly Tensor valid;             // (B, S) bool: slot holds a real (non-padding) token
    public int Length { get; private set; }
    public int Capacity { get; }
    public int Batch { get; }
    /// <summary>(B,) position id the next token of each sequence takes.</summary>
    public Tensor NextPositions { get; private set; }
    /// <summary>True once any filled slot is padding; decoding then needs an explicit mask.</summary>
    public bool HasPadding { get; private set; }
    /// <summary>longrope models: whether the cached keys were rotated with the long factors (null until the first forward).</summary>
    internal bool? LongRope { get; set; }

    public KvCache(int layers, int batch, int kvHeads, int capacity, int headDim, Device device, ScalarType dtype = ScalarType.Float32)
    {
        Capacity = capacity; Batch = batch;
        keys = new Tensor[layers]; values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            keys[i] = zeros(batch, kvHeads, capacity, headDim, dtype: dtype, device: device);
            values[i] = zeros(batch, kvHeads, capacity, headDim, dtype: dtype, device: device);
        }
        valid = zeros(batch, capacity, dtype: ScalarType.Bool, device: device);
        NextPositions = zeros(batch, dtype: ScalarType.Int64, device: device);
    }

    /// <summary>Position ids for new tokens (B, T) given their mask (null = all real), continuing each sequence.</summary>
    internal Tensor PositionsFor(Tensor? mask, long t)
    {
        if (mask is null)
            return t == 1 ? NextPositions.unsqueeze(1).clone()                         // (B, 1), a copy: Advance adds in place
                          : NextPositions.unsqueeze(1) + arange(t, dtype: ScalarType.Int64, device: NextPositions.device);
        var pos = mask.cumsum(1) - 1 + NextPositions.unsqueeze(1);                    // (B, T)
        return pos.clamp_min(0);
    }

    /// <summary>Records the new tokens' mask (null = all real); call once per forward, before the layers append.</summary>
    internal void Advance(Tensor? mask, long t, bool maskHasPadding)
    {
        if (slotted) throw new InvalidOperationException("this KV cache holds independent rows (continuous batching); Forward cannot append to it");
        if (Length + t > Capacity) throw new InvalidOperationException($"KV cache full: {Length} + {t} > capacity {Capacity}");
        if (mask is null)
        {
            // Decoding step: every new token is real, so no mask arithmetic is needed.
            valid.narrow(1, Length, t).fill_(true);
            NextPositions.add_(t);
        }
        else
        {
            valid.narrow(1, Length, t).copy_(mask.to(ScalarType.Bool));
            NextPositions.add_(mask.sum(1));
        }
        HasPadding |= maskHasPadding;
        pendingLength = Length + (int)t;
    }

    int pendingLength;

    /// <summary>Writes a layer's new keys/values (B, KV, T, D) and returns views over all filled slots.</summary>
    internal (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        if (slotIndex is not null)
        {
            // Continuous batching: each row writes its one new token at its own column.
            keys[layer].scatter_(2, slotIndex, k);
            values[layer].scatter_(2, slotIndex, v);
            return (keys[layer].narrow(2, 0, slotSpan), values[layer].narrow(2, 0, slotSpan));
        }
        long t = k.shape[2];
        keys[layer].narrow(2, Length, t).copy_(k);
        values[layer].narrow(2, Length, t).copy_(v);
        return (keys[layer].narrow(2, 0, Length + t), values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>Call after the last layer: the new tokens become part of the history.</summary>
    internal void Commit() => Length = pendingLength;

    /// <summary>(B, Length + T) bool: which key slots are real, for the tokens being added.</summary>
    internal Tensor KeyMask(long newTokens) => valid.narrow(1, 0, Length + newTokens);

    // Continuous batching (CausalLM.DecodeSlots): the rows are independent sequences; row b's token at position p
    // sits in column p, and a step writes each row's new token at its own column.
    Tensor? slotIndex;   // (B, KV, 1, D) int64 during a slot step: the column each row writes
    long slotSpan;       // columns the step's attention reads (longest row + 1)
    bool slotted;

    /// <summary>Starts a slot step: row b writes at <paramref name="columns"/>[b] (B,), attention reads the first <paramref name="span"/> columns.</summary>
    internal void BeginSlotStep(Tensor columns, long span)
    {
        if (Length > 0) throw new InvalidOperationException("this KV cache is filled step by step (Forward); continuous batching needs a cache of its own");
        if (span > Capacity) throw new InvalidOperationException($"KV cache full: a row reaches column {span - 1}, capacity {Capacity}");
        slotted = true;
        slotIndex = columns.view(-1, 1, 1, 1).expand(Batch, keys[0].shape[1], 1, keys[0].shape[3]);   // (B, KV, 1, D)
        slotSpan = span;
    }

    internal void EndSlotStep() => slotIndex = null;

    /// <summary>
    /// Continuous batching: puts the sequences of a prefilled cache (filled by one Forward from empty, no left
    /// padding, so each token's column is its position) into rows <paramref name="rows"/> of this one, replacing
    /// whatever those rows held. Source row i becomes row rows[i].
    /// </summary>
    public void LoadRows(KvCache source, long[] rows)
    {
        if (Length > 0) throw new InvalidOperationException("this KV cache is filled step by step (Forward); continuous batching needs a cache of its own");
        if (source.Length > Capacity) throw new InvalidOperationException($"KV cache full: a prompt of {source.Length} tokens, capacity {Capacity}");
        if (rows.Length != source.Batch) throw new ArgumentException($"{rows.Length} rows for {source.Batch} prefilled sequences");
        using var scope = NewDisposeScope();
        slotted = true;
        var index = tensor(rows, device: valid.device);                                       // (G,)
        long t = source.Length;
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i].narrow(2, 0, t).index_copy_(0, index, source.keys[i].narrow(2, 0, t));    // (G, KV, T, D) into (B, KV, T, D)
            values[i].narrow(2, 0, t).index_copy_(0, index, source.values[i].narrow(2, 0, t));
        }
    }

    /// <summary>True once rows were loaded or stepped independently (the cache then serves only slot steps).</summary>
    public bool Slotted => slotted;

    public void Dispose()
    {
        foreach (var t in keys) t.Dispose();
        foreach (var t in values) t.Dispose();
        valid.Dispose();
        NextPositions.Dispose();
    }
}
