using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// What one forward pass returns. <see cref="Logits"/> covers the last <c>logitsToKeep</c> positions (all when 0);
/// <see cref="HiddenStates"/> is the final-norm output at every position, what value and reward heads read.
/// </summary>
/// <param name="Logits">(B, T', V) float32, T' = T or logitsToKeep; empty (B, 0, V) when logits were skipped.</param>
/// <param name="HiddenStates">(B, T, H).</param>
internal sealed record CausalLMOutput(Tensor Logits, Tensor HiddenStates) : IDisposable
{
    public void Dispose() { Logits.Dispose(); HiddenStates.Dispose(); }
}

/// <summary>
/// Per-forward state every layer reads: the attention mask, the cache, rotary cos/sin. Models that mix sliding and
/// full layers (Gemma) also pass the sliding layers' mask and, where their RoPE base differs, their cos/sin.
/// </summary>
internal sealed record LayerContext(AttentionMask Mask, KvCache? Cache, Tensor? Cos, Tensor? Sin)
{
    public AttentionMask? SlidingMask { get; init; }
    public Tensor? LocalCos { get; init; }
    public Tensor? LocalSin { get; init; }
}

/// <summary>
/// A decoder-only language model: the one interface generation, log-probs, heads, LoRA and the trainers use.
/// Inputs are token ids (B, T) and an attention mask (B, T) with 1 for real tokens; left padding is allowed and
/// position ids come from the mask (cumsum − 1), so a left-padded row computes exactly what it would alone.
/// </summary>
public abstract class CausalLM : nn.Module
{
    public ModelConfig Config { get; }

    private protected CausalLM(string name, ModelConfig config) : base(name) => Config = config;

    /// <summary>
    /// Recompute each transformer block's activations in the backward pass instead of keeping them from the forward
    /// pass (<see cref="DecoderStack"/>). Applies only while autograd records and no KV cache is in use, so
    /// generation and no-grad scoring are unaffected; gradients are those of the plain backward.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// One forward pass. <paramref name="attentionMask"/> null means every token is real. With a
    /// <paramref name="cache"/>, the tokens are appended after what it holds (prefill, then one token per step).
    /// <paramref name="logitsToKeep"/> > 0 computes logits only for the last that many positions (decoding needs
    /// 1; completion log-probs need the completion's length + 1); negative skips the LM head entirely.
    /// </summary>
    internal CausalLMOutput Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, int logitsToKeep = 0)
    {
        using var scope = NewDisposeScope();
        long b = inputIds.shape[0], t = inputIds.shape[1];
        // Padding is only inspected when a mask is given (one host sync); decoding steps pass null.
        bool newPadding = attentionMask is not null && !attentionMask.all().item<bool>();
        var realMask = newPadding ? attentionMask : null;                          // null: every new token is real
        Tensor positions;
        Tensor keyValid;
        long history = 0;
        if (cache is not null)
        {
            history = cache.Length;
            positions = cache.PositionsFor(realMask, t);
            cache.Advance(realMask, t, newPadding);
            keyValid = cache.KeyMask(t);
        }
        else
        {
            positions = newPadding ? (attentionMask!.cumsum(1) - 1).clamp_min(0)
                                   : arange(t, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0).expand(b, t);
            keyValid = newPadding ? attentionMask!.to(ScalarType.Bool) : ones(b, t, dtype: ScalarType.Bool, device: inputIds.device);
        }
        bool anyPadding = newPadding || (cache?.HasPadding ?? false);
        // A window on every layer (mistral, phi3) goes into the one mask; per-layer windows (gemma) get a second mask.
        bool perLayer = Config.SlidingLayers is not null;
        var attn = AttentionMask.Build(keyValid, t, history, anyPadding, perLayer ? null : Config.SlidingWindow);
        AttentionMask? sliding = perLayer ? AttentionMask.Build(keyValid, t, history, anyPadding, Config.SlidingWindow) : null;
        // Positions never exceed the slot index, so history + t bounds the rotary table without a host sync.
        bool checkpoint = GradientCheckpointing && cache is null && is_grad_enabled();
        var hidden = Body(inputIds, positions, history + t, attn, sliding, cache, checkpoint);  // (B, T, H)
        cache?.Commit();
        Tensor logits;
        if (logitsToKeep < 0) logits = zeros(b, 0, Config.VocabSize, device: inputIds.device);
        else
        {
            // The kept positions are copied out contiguous: on a strided (B, T', H) slice, matmul cannot fold the batch
            // into rows and, when the head's weight needs no gradient, broadcasts the (V, H) weight over the batch; in
            // bf16 on the CPU that is a B-fold copy of the vocabulary matrix (2.2 GB at Qwen2-0.5B's, batch 8).
            var h = logitsToKeep > 0 && logitsToKeep < t ? hidden.narrow(1, t - logitsToKeep, logitsToKeep).contiguous() : hidden;
            logits = LmHead(h);                                                      // (B, T', V)
        }
        return new CausalLMOutput(logits.MoveToOuterDisposeScope(), hidden.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// One decoding step of continuous batching. Row b of <paramref name="cache"/> holds one sequence, its token at
    /// position p in column p (rows loaded by <see cref="KvCache.LoadRows"/>, no padding); <paramref name="tokens"/>
    /// (B, 1) appends each row's next token at column <paramref name="columns"/>[b], which is also its position. Rows
    /// advance independently, so a finished row can take a new prompt while the others decode; a row sees only its
    /// own columns (and, on sliding layers, the last window of them). Returns the new tokens' logits (B, V).
    /// </summary>
    internal Tensor DecodeSlots(Tensor tokens, KvCache cache, long[] columns)
    {
        if (tokens.shape[0] != columns.Length || tokens.shape[1] != 1) throw new ArgumentException($"tokens {string.Join('x', tokens.shape)} for {columns.Length} rows: one token per row");
        using var scope = NewDisposeScope();
        var device = tokens.device;
        long span = columns.Max() + 1;
        var cols = tensor(columns, device: device);                                        // (B,)
        var query = cols.unsqueeze(1);                                                      // (B, 1) position of the new token
        var keyPos = arange(span, dtype: ScalarType.Int64, device: device).unsqueeze(0);   // (1, S)
        AttentionMask Visible(int? window)
        {
            var seen = keyPos <= query;                                                     // (B, S) the row's history and itself
            if (window is int w) seen = seen.logical_and(keyPos > query - w);
            return new AttentionMask(seen.view(columns.Length, 1, 1, span), false);       // (B, 1, 1, S)
        }
        bool perLayer = Config.SlidingLayers is not null;
        var attn = Visible(perLayer ? null : Config.SlidingWindow);
        AttentionMask? sliding = perLayer ? Visible(Config.SlidingWindow) : null;
        cache.BeginSlotStep(cols, span);
        Tensor hidden;
        try { hidden = Body(tokens, query, span, attn, sliding, cache, checkpoint: false); }  // (B, 1, H)
        finally { cache.EndSlotStep(); }
        return LmHead(hidden).squeeze(1).MoveToOuterDisposeScope();                        // (B, V)
    }

    /// <summary>
    /// Embeddings → blocks → final norm. positions: (B, T), all below <paramref name="positionBound"/> → hidden (B, T, H).
    /// <paramref name="slidingMask"/> is set only when the config slides some layers and not others; with
    /// <paramref name="checkpoint"/> the blocks run under <see cref="DecoderStack"/>'s gradient checkpointing.
    /// </summary>
    private protected abstract Tensor Body(Tensor inputIds, Tensor positions, long positionBound, AttentionMask mask, AttentionMask? slidingMask, KvCache? cache, bool checkpoint);

    /// <summary>hidden (B, T, H) → logits (B, T, V).</summary>
    private protected abstract Tensor LmHead(Tensor hidden);

    /// <summary>
    /// The LM head alone: final-norm hidden states (..., H) → logits (..., V) in the model's dtype (Gemma 2's soft-cap
    /// included). <see cref="ChunkedLmHead"/> applies it a chunk of positions at a time.
    /// </summary>
    internal Tensor LmHeadLogits(Tensor hidden) => LmHead(hidden);

    /// <summary>The parameters the LM head reads: the token embedding matrix when tied, else lm_head's (adapters included).</summary>
    internal abstract IEnumerable<Parameter> LmHeadParameters();

    /// <summary>The token embedding matrix (V, H), shared with the LM head when tied.</summary>
    internal abstract Tensor WordEmbeddings { get; }

    /// <summary>A cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> tokens, on this model's device.</summary>
    internal KvCache CreateCache(int batch, int capacity)
    {
        var p = WordEmbeddings;
        return new KvCache(Config.NumLayers, batch, Config.NumKeyValueHeads, capacity, Config.HeadDim, p.device, p.dtype);
    }

    /// <summary>Every projection that can carry a LoRA adapter, by its state-dict name (e.g. model.layers.0.self_attn.q_proj).</summary>
    internal IEnumerable<(string Name, Dense Layer)> DenseLayers() =>
        named_modules().Where(m => m.module is Dense).Select(m => (m.name, (Dense)m.module));

    /// <summary>Parameter count (tied weights once).</summary>
    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <summary>Moves the model and its non-parameter tables to <paramref name="device"/>.</summary>
    public virtual CausalLM MoveTo(Device device)
    {
        this.to(device);
        return this;
    }

    /// <summary>HF-style initialisation: normal(0, 0.02) weights, zero biases, unit norms (zero for Gemma's (1 + w) norms); seeded.</summary>
    internal void InitWeights(long seed, double std = 0.02)
    {
        using var _ = no_grad();
        var gen = new Generator((ulong)seed, WordEmbeddings.device);
        foreach (var (name, p) in named_parameters())
            if (!name.Contains(".lora_")) Initialize(Config, name, p, gen, std);
    }

    /// <summary>
    /// The initial value of one parameter, in place: zero biases, unit norm scales (zero for Gemma's (1 + w) norms),
    /// normal(0, std) matrices drawing from <paramref name="gen"/>. Applied in <c>named_parameters()</c> order with one
    /// generator, it reproduces <see cref="InitWeights"/> tensor by tensor (what a streamed checkpoint writer needs).
    /// </summary>
    internal static void Initialize(ModelConfig config, string name, Tensor p, Generator gen, double std = 0.02)
    {
        using var _ = no_grad();
        if (name.EndsWith("bias")) p.zero_();
        else if (p.dim() == 1) p.fill_(config.Family == ModelFamily.Gemma ? 0.0 : 1.0);   // LayerNorm / RMSNorm scales
        else
        {
            // GPT-2 scales residual output projections by 1/sqrt(2·layers) (the paper's modified init).
            double s = config.Family == ModelFamily.Gpt2 && name.EndsWith("c_proj.weight") ? std / Math.Sqrt(2.0 * config.NumLayers) : std;
            p.normal_(0, s, gen);
        }
    }
}
