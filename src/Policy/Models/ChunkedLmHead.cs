using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Models;

/// <summary>
/// The LM head applied a chunk of positions at a time, so that no batch × length × vocabulary tensor of logits (or of
/// their log-softmax) ever exists: each chunk's fp32 logits become per-position figures (log p of the target, entropy,
/// KL) and are freed before the next chunk. Under autograd each chunk is a <see cref="Recompute"/> node that keeps
/// only its slice of the hidden states and recomputes its logits in the backward pass, so gradients reach the hidden
/// states and the head's weights (tied embeddings included) exactly as the unchunked computation's do.
/// </summary>
/// <remarks>
/// Memory: at most a few chunks of logits at once (logits, their softmax, and in backward their gradient) instead of
/// the whole batch's. Cost: the head's matmul runs once more in the backward pass. Logits of bf16/fp16 models are
/// cast to fp32 per chunk (a float64 model stays float64).
/// </remarks>
internal static class ChunkedLmHead
{
    /// <summary>
    /// Default budget of fp32 logits per chunk: 64 MiB, i.e. 110 positions at Qwen2's 151,936-token vocabulary. Each
    /// chunk reads the whole head matrix, so fewer, larger chunks cost less time; a chunk's backward holds one such
    /// tensor for log-probs (<see cref="LogProbGradient"/>) and about five when the entropy or a KL is differentiated.
    /// Above glibc's largest mmap threshold (32 MiB) every chunk buffer is mapped and unmapped on its own: measured with 32 MiB chunks, which the heap kept, the no-grad pass at 8 × 512 rose by 1.6 GiB instead of 0.1.
    /// </summary>
    public const long DefaultChunkBytes = 64L << 20;

    /// <summary>Positions per chunk so that one chunk's fp32 logits take about <paramref name="chunkBytes"/>.</summary>
    public static long RowsPerChunk(int vocabSize, long chunkBytes = DefaultChunkBytes) => Math.Max(1, chunkBytes / (4L * vocabSize));

    /// <summary>
    /// Per-position log p(target), and the entropy of each position's distribution when <paramref name="entropy"/>:
    /// hidden (B, C, H) final-norm states, targets (B, C) int64 → (B, C) each, float32 (float64 for a float64 model).
    /// </summary>
    /// <remarks>Naive equivalent: <c>logits = model.LmHeadLogits(hidden); logits.log_softmax(-1).gather(-1, targets)</c>
    /// and <c>−Σ softmax · log_softmax</c>.</remarks>
    /// <param name="chunkRows">Positions per chunk; 0 picks <see cref="RowsPerChunk"/> for the model's vocabulary.</param>
    public static (Tensor LogProbs, Tensor? Entropy) TokenStats(CausalLM model, Tensor hidden, Tensor targets, bool entropy = false, long chunkRows = 0)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], c = hidden.shape[1];
        var flatTargets = targets.reshape(b * c);                                  // (N)
        var head = model.LmHeadParameters().ToList();
        var chunks = Chunks(hidden, chunkRows > 0 ? chunkRows : RowsPerChunk(model.Config.VocabSize))
            .Select(r => Recompute.Apply(x => Stats(model, x[0]!, x[1]!, entropy), [r.Rows, flatTargets.narrow(0, r.Start, r.Count)], head,
                // An entropy that only feeds a metric gets no gradient: then only log p's is needed, and that one is by hand.
                seed: (inputs, grads) => entropy && grads[1] is not null
                    ? (Stats(model, inputs[0]!, inputs[1]!, entropy: true), grads.ToArray())
                    : LogProbGradient(model, inputs[0]!, inputs[1]!, grads[0])))
            .ToList();
        var lp = Join(chunks.Select(o => o[0]), b, c, hidden);
        var ent = entropy ? Join(chunks.Select(o => o[1]), b, c, hidden) : null;
        return (lp.MoveToOuterDisposeScope(), ent?.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Per-position forward KL(teacher ‖ student) = Σ_v p_t (log p_t − log p_s) of the temperature-scaled
    /// distributions: student and teacher hidden (B, C, H) → (B, C). Gradients reach the student (hidden and head);
    /// the teacher's side is a constant.
    /// </summary>
    public static Tensor ForwardKl(CausalLM student, Tensor studentHidden, CausalLM teacher, Tensor teacherHidden, double temperature = 1.0, long chunkRows = 0)
    {
        using var scope = NewDisposeScope();
        long b = studentHidden.shape[0], c = studentHidden.shape[1];
        var flatTeacher = teacherHidden.detach().reshape(b * c, teacherHidden.shape[2]);                 // (N, H_t)
        int vocab = Math.Max(student.Config.VocabSize, teacher.Config.VocabSize);
        var head = student.LmHeadParameters().ToList();
        var chunks = Chunks(studentHidden, chunkRows > 0 ? chunkRows : RowsPerChunk(vocab))
            .Select(r => Recompute.Apply(x => [Kl(student, x[0]!, teacher, x[1]!, temperature)], [r.Rows, flatTeacher.narrow(0, r.Start, r.Count)], head))
            .ToList();
        return Join(chunks.Select(o => o[0]), b, c, studentHidden).MoveToOuterDisposeScope();
    }

    readonly record struct Chunk(long Start, long Count, Tensor Rows);

    /// <summary>(B, C, H) → consecutive row slices of its (B·C, H) view.</summary>
    static IEnumerable<Chunk> Chunks(Tensor hidden, long rows)
    {
        long n = hidden.shape[0] * hidden.shape[1];
        var flat = hidden.reshape(n, hidden.shape[2]);                             // (N, H)
        for (long s = 0; s < n; s += rows)
        {
            long k = Math.Min(rows, n - s);
            yield return new Chunk(s, k, flat.narrow(0, s, k));                    // (k, H)
        }
    }

    static Tensor Join(IEnumerable<Tensor> parts, long b, long c, Tensor like)
    {
        var list = parts.ToList();
        return list.Count == 0 ? zeros(b, c, dtype: Precise(like.dtype), device: like.device) : cat(list).view(b, c);
    }

    static ScalarType Precise(ScalarType t) => t == ScalarType.Float64 ? t : ScalarType.Float32;

    static Tensor Logits(CausalLM model, Tensor rows)
    {
        var logits = model.LmHeadLogits(rows);                                     // (k, V)
        return logits.dtype == Precise(logits.dtype) ? logits : logits.to(Precise(logits.dtype));
    }

    /// <summary>One chunk: log p(target) (k) and, when asked, the entropy lse − Σ p·z (k).</summary>
    static Tensor[] Stats(CausalLM model, Tensor rows, Tensor targets, bool entropy)
    {
        using var scope = NewDisposeScope();
        var logits = Logits(model, rows);                                          // (k, V)
        var lse = logits.logsumexp(-1, keepdim: true);                             // (k, 1)
        var lp = (logits.gather(-1, targets.unsqueeze(-1)) - lse).squeeze(-1);     // (k)
        if (!entropy) return [lp.MoveToOuterDisposeScope()];
        var p = (logits - lse).exp_();                                             // (k, V)
        var ent = lse.squeeze(-1) - (p * logits).sum(-1);                          // (k)
        return [lp.MoveToOuterDisposeScope(), ent.MoveToOuterDisposeScope()];
    }

    /// <summary>
    /// The backward of one chunk's log p(target) with the gradient of the log-softmax worked out by hand in the
    /// recomputed logits' own buffer: d log softmax(z)[t] / dz = onehot(t) − softmax(z), times the incoming gradient
    /// <paramref name="grad"/> (k). Autograd made three more chunk-sized tensors for it (the gather's scatter, the
    /// logsumexp's softmax, their scaled sum), each above glibc's mmap threshold and so freshly mapped, zeroed and
    /// unmapped every chunk; here only logsumexp's own temporary remains. The head's own backward (hidden states and
    /// weights, LoRA, soft-cap) stays autograd's.
    /// </summary>
    static (Tensor[] Outputs, Tensor?[] Grads) LogProbGradient(CausalLM model, Tensor rows, Tensor targets, Tensor? grad)
    {
        if (grad is null) return ([], []);
        var logits = Logits(model, rows);                                          // (k, V), recorded: the head's backward runs from here
        var d = logits.detach();                                                   // the same buffer: nothing saved the head's output
        using (no_grad())
        {
            // Autograd's own arithmetic, in place: softmax as exp(z − logsumexp z), times −g, plus g at the target,
            // so the gradients are bit for bit those of differentiating Stats.
            d.sub_(d.logsumexp(-1, keepdim: true)).exp_();                        // softmax(z)
            var g = grad.to(d.dtype).unsqueeze(-1);                                // (k, 1)
            d.mul_(g.neg()).scatter_add_(-1, targets.unsqueeze(-1), g);           // g · (onehot(t) − softmax(z))
        }
        return ([logits], [d]);
    }

    /// <summary>One chunk of forward KL: Σ_v p_t (log p_t − log p_s) (k).</summary>
    static Tensor Kl(CausalLM student, Tensor rows, CausalLM teacher, Tensor teacherRows, double temperature)
    {
        using var scope = NewDisposeScope();
        var s = (Logits(student, rows) / temperature).log_softmax(-1);             // (k, V)
        Tensor t;
        using (no_grad()) t = (Logits(teacher, teacherRows) / temperature).log_softmax(-1);   // (k, V)
        return (t.exp() * (t - s)).sum(-1).MoveToOuterDisposeScope();              // (k)
    }
}
