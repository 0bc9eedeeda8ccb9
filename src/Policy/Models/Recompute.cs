using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Rlft.Policy.Models;

/// <summary>
/// Activation checkpointing for TorchSharp, which has no <c>torch.utils.checkpoint</c>: a custom autograd function
/// (TorchSharp's <c>torch.autograd.MultiTensorFunction</c>, libtorch's C++ custom Function) runs <c>f</c> with autograd
/// off in the forward pass and keeps only its inputs; its backward runs <c>f</c> again with autograd on and
/// differentiates that recomputation (<c>torch.autograd.grad</c>) with respect to the inputs and the parameters
/// <c>f</c> reads. So the activations inside <c>f</c> live for one recomputation instead of from the forward pass to
/// the backward pass, at the cost of one more forward of <c>f</c>.
/// </summary>
/// <remarks>
/// The parameters are explicit inputs of the node (as in PyTorch's non-reentrant checkpoint), so their gradients
/// arrive even when no tensor input requires one — a LoRA model's first block reads frozen embeddings — and
/// accumulate into <c>.grad</c> through the ordinary engine. With <c>preserveRng</c> the random draws of <c>f</c>
/// (dropout) repeat in the recomputation: on CPU the default generator's state is saved and restored; on CUDA, whose
/// generator state TorchSharp cannot read, the CUDA generator is seeded from the CPU generator before each run.
/// On CUDA, TorchSharp's custom functions also keep one uninitialised tensor per output (to materialise missing
/// gradients), which doubles the bytes kept per checkpointed block; on CPU those pages are never touched.
/// </remarks>
internal static class Recompute
{
    /// <summary>
    /// <c>f(inputs)</c>, differentiable with respect to the inputs that require grad and to <paramref name="parameters"/>,
    /// with nothing inside <c>f</c> kept for the backward pass. Null inputs are passed to <c>f</c> as null. Every
    /// output must be a floating-point tensor that depends on the inputs or the parameters. Without autograd
    /// recording this is plain <c>f(inputs)</c>. With <paramref name="trimHeap"/> the backward hands the C heap's free
    /// pages back once the recomputation's temporaries are freed (a transformer block's: see the backward).
    /// </summary>
    /// <param name="seed">When given, what the backward differentiates instead of <paramref name="f"/>'s outputs (no RNG replay then).</param>
    public static Tensor[] Apply(Func<Tensor?[], Tensor[]> f, IReadOnlyList<Tensor?> inputs, IReadOnlyList<Parameter> parameters, bool preserveRng = false,
        bool trimHeap = false, Seed? seed = null)
    {
        var trainable = parameters.Where(p => p.requires_grad).ToArray();
        // A native module's parameter getter (Embedding.weight) makes a new wrapper in the caller's dispose scope,
        // which may end before the backward pass: the node keeps its wrappers out of any scope.
        foreach (var p in trainable) p.DetachFromDisposeScope();
        bool records = is_grad_enabled() && (trainable.Length > 0 || inputs.Any(x => x is { requires_grad: true }));
        if (!records) return f(inputs.ToArray());
        ReleaseHandedBack();   // a new graph: the previous backward pass is over
        bool onCpu = inputs.FirstOrDefault(x => x is not null) is not { } first || first.device.type == DeviceType.CPU;   // a GPU's memory is not the C heap
        var call = new Call(f, inputs.Count, trainable, preserveRng, trimHeap && onCpu) { Seed = seed };
        var args = new object?[inputs.Count + trainable.Length + 1];
        for (int i = 0; i < inputs.Count; i++) args[i] = inputs[i];
        for (int j = 0; j < trainable.Length; j++) args[inputs.Count + j] = trainable[j];
        args[^1] = call;
        return RecomputeFunction.apply(args!).ToArray();
    }

    /// <summary>
    /// What a backward pass differentiates instead of <c>f</c>'s outputs: given the inputs (those that need a gradient
    /// require one) and the gradients of <c>f</c>'s outputs (null where an output got none), it recomputes, with
    /// autograd on, some tensors inside <c>f</c> and returns them with their gradients, which it works out itself. For
    /// a step whose gradient is cheaper by hand than through autograd's temporaries (the LM head's log-softmax).
    /// </summary>
    public delegate (Tensor[] Outputs, Tensor?[] Grads) Seed(Tensor?[] inputs, IReadOnlyList<Tensor?> gradOutputs);

    /// <summary>
    /// The gradients the last backward call on this thread handed to the autograd engine. The engine holds its own
    /// reference once the call returns, so our wrappers are released at the next call (or the next forward) rather than
    /// with the caller's dispose scope at the end of a training step: otherwise every chunk's full gradient of the LM
    /// head's weight, and every block's parameter gradients, would stay alive for the whole backward pass.
    /// </summary>
    [ThreadStatic] static List<Tensor>? _handedBack;
    static List<Tensor> HandedBack => _handedBack ??= [];

    static void ReleaseHandedBack()
    {
        if (_handedBack is not { Count: > 0 } list) return;
        foreach (var t in list) t.Dispose();
        list.Clear();
    }

    /// <summary>What the backward pass needs besides the saved inputs: the function, the counts, the RNG to replay.</summary>
    sealed class Call(Func<Tensor?[], Tensor[]> f, int inputs, Parameter[] parameters, bool preserveRng, bool trimHeap)
    {
        public readonly bool TrimHeap = trimHeap;
        public readonly Func<Tensor?[], Tensor[]> F = f;
        public readonly int Inputs = inputs;
        public readonly Parameter[] Parameters = parameters;
        public readonly bool PreserveRng = preserveRng;
        public Seed? Seed { get; init; }
        public int ParameterCount => Parameters.Length;
        public bool[] InputNeedsGrad = [];
        public Tensor? CpuRngState;   // the default generator before the forward run (5 KB)
        public long? CudaSeed;        // the seed the CUDA generator got before the forward run
    }

    sealed class RecomputeFunction : MultiTensorFunction<RecomputeFunction>
    {
        public override string Name => "Recompute";

        public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
        {
            var call = (Call)vars[^1];
            var inputs = new Tensor?[call.Inputs];
            for (int i = 0; i < call.Inputs; i++) inputs[i] = vars[i] as Tensor;
            call.InputNeedsGrad = inputs.Select(x => x is { requires_grad: true }).ToArray();
            ctx.save_for_backward(inputs.ToList()!);
            ctx.save_data("call", call);
            // An output nobody differentiates (e.g. an entropy that only feeds a metric) arrives as no gradient
            // rather than zeros, and is left out of the recomputation's backward.
            ctx.set_materialize_grads(false);
            if (call.PreserveRng) SaveRng(call, inputs);
            using var scope = NewDisposeScope();
            var outputs = call.F(inputs);
            foreach (var o in outputs) o.MoveToOuterDisposeScope();
            return outputs.ToList();
        }

        public override List<Tensor> backward(AutogradContext ctx, List<Tensor> gradOutputs)
        {
            ReleaseHandedBack();
            var call = (Call)ctx.get_data("call");
            var results = new Tensor?[call.Inputs + call.ParameterCount + 1];
            // libtorch may call this on one of its own threads (CUDA): the scope catches every temporary of the
            // recomputation; only the gradients handed back to the engine leave it.
            using (var scope = NewDisposeScope())
            using (enable_grad())
            {
                var saved = ctx.get_saved_variables();
                var inputs = new Tensor?[call.Inputs];
                for (int i = 0; i < call.Inputs; i++)
                    inputs[i] = saved[i] is not { IsInvalid: false } s ? null : call.InputNeedsGrad[i] ? s.detach().requires_grad_(true) : s.detach();
                Tensor[] outputs;
                if (call.Seed is { } seed)
                {
                    var (seeded, seedGrads) = seed(inputs, gradOutputs.Select(g => g is { IsInvalid: false } ? g : null).ToList());
                    (outputs, gradOutputs) = (seeded, seedGrads.ToList()!);   // null: no gradient (skipped below)
                }
                else if (call.PreserveRng)
                {
                    using var now = Generator.Default.get_state();
                    ReplayRng(call);
                    outputs = call.F(inputs);
                    Generator.Default.set_state(now);
                }
                else outputs = call.F(inputs);

                // Differentiate the outputs that carry a gradient with respect to everything that needs one.
                var wrtIndex = new List<int>();
                var wrt = new List<Tensor>();
                for (int i = 0; i < call.Inputs; i++) if (call.InputNeedsGrad[i]) { wrtIndex.Add(i); wrt.Add(inputs[i]!); }
                for (int j = 0; j < call.ParameterCount; j++) { wrtIndex.Add(call.Inputs + j); wrt.Add(call.Parameters[j]); }
                var outs = new List<Tensor>();
                var grads = new List<Tensor>();
                for (int k = 0; k < outputs.Length; k++)
                    if (outputs[k].requires_grad && k < gradOutputs.Count && gradOutputs[k] is { IsInvalid: false } g) { outs.Add(outputs[k]); grads.Add(g); }
                if (outs.Count > 0 && wrt.Count > 0)
                {
                    var g = grad(outs, wrt, grads, allow_unused: true);
                    for (int k = 0; k < g.Count; k++)
                        if (!g[k].IsInvalid) HandedBack.Add(results[wrtIndex[k]] = g[k].DetachFromDisposeScope());
                }
            }
            // The recomputation's temporaries are freed now. glibc keeps the pages of freed blocks below its mmap
            // threshold (which rises to 32 MiB), and the next block's temporaries do not fit the holes between what
            // stays alive (gradients, saved inputs), so without a trim every block leaves its activations' pages
            // resident and the peak grows by ~60 MiB a layer where the block keeps 12 MiB (GPT-2 124M, 4 × 1,024).
            // Trimming here costs a few percent of the step (pages fault in again); a fixed 1 MiB mmap threshold
            // would do the same for every allocation of the process and cost 20-30 % of training and decoding.
            if (call.TrimHeap) Runtime.NativeHeap.Trim();
            return results.ToList()!;
        }

        static void SaveRng(Call call, Tensor?[] inputs)
        {
            if (inputs.Any(x => x is not null && x.device.type == DeviceType.CUDA))
            {
                // One draw from the CPU generator keeps runs reproducible under manual_seed.
                long seed = randint(long.MaxValue, [1], dtype: ScalarType.Int64).item<long>();
                cuda.manual_seed(seed);
                call.CudaSeed = seed;
            }
            call.CpuRngState = Generator.Default.get_state().DetachFromDisposeScope();
        }

        static void ReplayRng(Call call)
        {
            Generator.Default.set_state(call.CpuRngState!);
            if (call.CudaSeed is long seed) cuda.manual_seed(seed);
        }
    }
}
