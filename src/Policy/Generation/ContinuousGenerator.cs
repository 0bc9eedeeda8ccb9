using Rlft.Policy.Models;
using Rlft.Policy.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Generation;

/// <summary>
/// Continuous batching (Orca's iteration-level scheduling; vLLM's scheduler): a fixed number of KV-cache rows
/// ("slots") decode at once; a sequence that produces a stop token or reaches MaxNewTokens leaves its slot, and the
/// next waiting prompt is prefilled into it while the other rows go on decoding. Static batching instead decodes a
/// batch until its longest sequence ends, so with spread-out completion lengths most of its rows are padding.
/// Each row sits at its own length (<see cref="CausalLM.DecodeSlots"/>: column = position, a mask per row) and each
/// prompt samples from its own <see cref="SequenceRandom"/>, so a prompt's completion is what it gets decoded alone.
/// </summary>
static class ContinuousGenerator
{
    public static GenerationResult Run(CausalLM model, IReadOnlyList<int[]> prompts, GenerationOptions o, int padId, int eosId)
    {
        using var noGrad = no_grad();
        var device = model.WordEmbeddings.device;
        int n = prompts.Count, slots = Math.Min(o.Slots, n);
        var stop = new HashSet<int>(o.StopTokenIds ?? [eosId]);
        var random = SequenceRandom.ForPrompts(o.Seed, n, o.FirstPromptIndex);
        bool greedy = o.Temperature == 0;
        var tokens = new List<int>[n]; var logps = new List<float>[n]; var sampledLogps = new List<float>[n];
        var stopped = new bool[n];
        var owner = Enumerable.Repeat(-1, slots).ToArray();       // prompt index decoding in each slot, −1 = free
        var columns = new long[slots];                             // column (= position) of the token a slot feeds next
        var feed = new long[slots];                                // that token
        // Refill when a quarter of the slots are free (or none decode): each refill is one prefill pass, so
        // refilling one slot at a time would add a forward pass per finished sequence.
        int refillAt = Math.Max(1, slots / 4);
        int next = 0, active = 0;

        using var cache = model.CreateCache(slots, prompts.Max(p => p.Length) + o.MaxNewTokens);
        var logits = zeros(slots, model.Config.VocabSize, device: device);                // (S, V) next-token logits per slot
        try
        {
            while (true)
            {
                using var step = NewDisposeScope();
                int free = slots - active;
                if (next < n && free > 0 && (free >= refillAt || active == 0 || next + free >= n))
                {
                    var rows = Enumerable.Range(0, slots).Where(s => owner[s] < 0).Take(n - next).ToArray();
                    var group = rows.Select((_, i) => next + i).ToArray();
                    var first = Prefill(model, group.Select(i => prompts[i]).ToList(), cache, rows, padId);   // (G, V)
                    logits.index_copy_(0, tensor(rows.Select(r => (long)r).ToArray(), device: device), first.to(logits.dtype));
                    foreach (var (row, prompt) in rows.Zip(group))
                    {
                        owner[row] = prompt; columns[row] = prompts[prompt].Length;
                        tokens[prompt] = []; logps[prompt] = []; sampledLogps[prompt] = [];
                    }
                    next += rows.Length; active += rows.Length;
                }

                // The step's libtorch ops are too small to split over threads; prefills (above) and the projections do.
                using var inline = DecodeThreads.Inline(device);
                var uniforms = greedy ? [] : owner.Select(p => p < 0 ? 0.5f : random[p].NextFloat()).ToArray();
                var (tok, lp, slp) = Sampler.Next(logits, o, uniforms);
                var hostTok = tok.cpu().data<long>().ToArray();
                var hostLp = lp.cpu().data<float>().ToArray();
                var hostSlp = slp.cpu().data<float>().ToArray();
                for (int s = 0; s < slots; s++)
                {
                    int p = owner[s];
                    if (p < 0) continue;
                    int token = (int)hostTok[s];
                    tokens[p].Add(token); logps[p].Add(hostLp[s]); sampledLogps[p].Add(hostSlp[s]);
                    bool hit = stop.Contains(token);
                    if (hit || tokens[p].Count == o.MaxNewTokens)
                    {
                        stopped[p] = hit; owner[s] = -1; columns[s] = 0; feed[s] = padId; active--;
                    }
                    else feed[s] = token;
                }
                if (active == 0 && next == n) break;
                if (active == 0) continue;

                // Free slots feed padding at column 0: their rows are rewritten by the next prefill.
                var fed = tensor(feed, [slots, 1], device: device);                           // (S, 1)
                var stepLogits = model.DecodeSlots(fed, cache, columns);                      // (S, V)
                logits.Dispose();
                logits = stepLogits.DetachFromDisposeScope();
                for (int s = 0; s < slots; s++) if (owner[s] >= 0) columns[s]++;
            }
        }
        finally { logits.Dispose(); }
        return new GenerationResult(tokens.Select(t => t.ToArray()).ToArray(), logps.Select(t => t.ToArray()).ToArray(),
            sampledLogps.Select(t => t.ToArray()).ToArray(), stopped);
    }

    /// <summary>
    /// Encodes a group of prompts in one pass, right-padded (so each token's column is its position), into rows
    /// <paramref name="rows"/> of <paramref name="cache"/>; returns each prompt's next-token logits (G, V).
    /// </summary>
    static Tensor Prefill(CausalLM model, IReadOnlyList<int[]> group, KvCache cache, int[] rows, int padId)
    {
        using var scope = NewDisposeScope();
        var device = model.WordEmbeddings.device;
        int g = group.Count, t = group.Max(p => p.Length);
        var ids = new long[g * t];
        var mask = new long[g * t];
        for (int i = 0; i < g; i++)
            for (int j = 0; j < t; j++)
            {
                bool real = j < group[i].Length;
                ids[i * t + j] = real ? group[i][j] : padId;
                mask[i * t + j] = real ? 1 : 0;
            }
        bool padded = group.Any(p => p.Length < t);
        using var prefill = model.CreateCache(g, t);
        Tensor last;
        if (!padded)
        {
            using var output = model.Forward(tensor(ids, [g, t], device: device), null, prefill, logitsToKeep: 1);
            last = output.Logits.squeeze(1);                                                   // (G, V)
        }
        else
        {
            using var output = model.Forward(tensor(ids, [g, t], device: device), tensor(mask, [g, t], device: device), prefill, logitsToKeep: -1);
            var at = tensor(group.Select(p => (long)p.Length - 1).ToArray(), device: device); // (G,) last real column
            var hidden = output.HiddenStates.gather(1, at.view(g, 1, 1).expand(g, 1, output.HiddenStates.shape[2]));   // (G, 1, H)
            last = model.LmHeadLogits(hidden).squeeze(1);                                      // (G, V)
        }
        cache.LoadRows(prefill, rows.Select(r => (long)r).ToArray());
        return last.MoveToOuterDisposeScope();
    }
}
