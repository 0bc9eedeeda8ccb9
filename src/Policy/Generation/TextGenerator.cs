using Rlft.Policy.Models;
using Rlft.Policy.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Generation;

/// <summary>
/// Batched autoregressive sampling. Static batching (default): prompts of different lengths are left-padded; position
/// ids follow the mask, so every row computes what it would alone. With the KV cache (default) the prompt is encoded
/// once and each step feeds one token per row; a row that has produced a stop token keeps receiving padding until all
/// rows stop or MaxNewTokens is reached. With <see cref="GenerationOptions.Slots"/> > 0 the prompts go through
/// <see cref="ContinuousGenerator"/> instead (KV cache only; longrope models stay static, as their rotary table
/// switches for the whole cache). Either way prompt i samples from its own <see cref="SequenceRandom"/>.
/// </summary>
public static class TextGenerator
{
    public static GenerationResult Generate(CausalLM model, IReadOnlyList<int[]> prompts, GenerationOptions options, int padId, int eosId)
    {
        options.Validate();
        if (prompts.Count == 0) return new GenerationResult([], [], [], []);
        for (int i = 0; i < prompts.Count; i++)
            if (prompts[i].Length == 0) throw new ArgumentException($"prompt {i} is empty: start it with a BOS or EOS token");
        bool wasTraining = model.training;
        model.eval();
        bool continuous = options.Slots > 0 && options.UseKvCache && model.Config.RopeScaling?.Type != "longrope";
        try { return continuous ? ContinuousGenerator.Run(model, prompts, options, padId, eosId) : Run(model, prompts, options, padId, eosId); }
        finally { if (wasTraining) model.train(); }
    }

    static GenerationResult Run(CausalLM model, IReadOnlyList<int[]> prompts, GenerationOptions o, int padId, int eosId)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = model.WordEmbeddings.device;
        int b = prompts.Count, n = o.MaxNewTokens;
        var random = SequenceRandom.ForPrompts(o.Seed, b, o.FirstPromptIndex);
        var stop = tensor((o.StopTokenIds ?? [eosId]).Select(x => (long)x).ToArray(), device: device);  // (S,)
        var batch = TokenBatch.LeftPad(prompts, padId, device);
        var tokens = full(b, n, padId, dtype: ScalarType.Int64, device: device);       // (B, N)
        var logps = zeros(b, n, device: device);                                        // (B, N)
        var sampledLogps = zeros(b, n, device: device);                                 // (B, N)
        var finished = zeros(b, dtype: ScalarType.Bool, device: device);                // (B,)
        var lengths = full(b, n, dtype: ScalarType.Int64, device: device);              // (B,) tokens kept per row
        var pad = tensor((long)padId, device: device);

        using var cache = o.UseKvCache ? model.CreateCache(b, (int)batch.Length + n) : null;
        var ids = batch.InputIds;
        var mask = batch.AttentionMask;
        Tensor logits;
        using (var prefill = model.Forward(ids, mask, cache, logitsToKeep: 1))
            logits = prefill.Logits.squeeze(1).DetachFromDisposeScope();                // (B, V)
        // With the cache, the steps' libtorch ops are too small to split over threads; the projections still split.
        using var inline = cache is not null ? DecodeThreads.Inline(device) : default;
        int steps = 0;
        for (int step = 0; step < n; step++)
        {
            using var stepScope = NewDisposeScope();
            var uniforms = o.Temperature == 0 ? [] : random.Select(r => r.NextFloat()).ToArray();
            var (tok, lp, slp) = Sampler.Next(logits, o, uniforms);
            tok = where(finished, pad, tok);                                            // (B,)
            tokens.select(1, step).copy_(tok);
            logps.select(1, step).copy_(lp.masked_fill(finished, 0));
            sampledLogps.select(1, step).copy_(slp.masked_fill(finished, 0));
            var hitStop = (tok.unsqueeze(1) == stop.unsqueeze(0)).any(1).logical_and(finished.logical_not()); // (B,)
            lengths.masked_fill_(hitStop, step + 1);
            finished.logical_or_(hitStop);
            steps = step + 1;
            if (step == n - 1 || finished.all().item<bool>()) break;
            Tensor next;
            if (cache is not null)
            {
                using var output = model.Forward(tok.unsqueeze(1), null, cache, logitsToKeep: 1);
                next = output.Logits.squeeze(1);                                        // (B, V)
            }
            else
            {
                var newIds = cat([ids, tok.unsqueeze(1)], 1);                           // (B, T+1)
                var newMask = cat([mask, ones(b, 1, dtype: ScalarType.Int64, device: device)], 1);
                if (!ReferenceEquals(ids, batch.InputIds)) { ids.Dispose(); mask.Dispose(); }
                ids = newIds.DetachFromDisposeScope(); mask = newMask.DetachFromDisposeScope();
                using var output = model.Forward(ids, mask, null, logitsToKeep: 1);
                next = output.Logits.squeeze(1);
            }
            logits.Dispose();
            logits = next.DetachFromDisposeScope();
        }
        logits.Dispose();
        if (!ReferenceEquals(ids, batch.InputIds)) { ids.Dispose(); mask.Dispose(); }

        // One copy to the host at the end rather than a sync per token.
        var hostTokens = tokens.narrow(1, 0, steps).cpu().data<long>().ToArray();
        var hostLp = logps.narrow(1, 0, steps).cpu().data<float>().ToArray();
        var hostSlp = sampledLogps.narrow(1, 0, steps).cpu().data<float>().ToArray();
        var hostLen = lengths.clamp_max(steps).cpu().data<long>().ToArray();
        var hostStopped = finished.cpu().data<bool>().ToArray();
        var outTokens = new int[b][]; var outLp = new float[b][]; var outSlp = new float[b][];
        for (int r = 0; r < b; r++)
        {
            int len = (int)hostLen[r];
            outTokens[r] = new int[len]; outLp[r] = new float[len]; outSlp[r] = new float[len];
            for (int j = 0; j < len; j++)
            {
                outTokens[r][j] = (int)hostTokens[r * steps + j];
                outLp[r][j] = hostLp[r * steps + j];
                outSlp[r][j] = hostSlp[r * steps + j];
            }
        }
        return new GenerationResult(outTokens, outLp, outSlp, hostStopped);
    }
}
