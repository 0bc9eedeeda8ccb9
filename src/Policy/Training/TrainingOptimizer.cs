using Rlft.Policy.Training.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>What one call to <see cref="TrainingOptimizer.Step"/> did.</summary>
internal sealed record StepReport(bool Applied, bool Skipped, double GradNorm, double LearningRate, int OptimizerStep)
{
    public IReadOnlyDictionary<string, double> Stats => new Dictionary<string, double>
    {
        ["optim/grad_norm"] = GradNorm,
        ["optim/lr"] = LearningRate,
        ["optim/skipped"] = Skipped ? 1 : 0,
    };
}

/// <summary>
/// AdamW (fp32 moments, or 8-bit block-wise ones with <c>kind = adamw-8bit</c>) with warmup + linear/cosine decay, gradient accumulation, gradient-norm clipping and a
/// guard that drops an update whose loss or gradients are not finite (weights and optimizer state
/// untouched). The schedule is a pure function of the optimizer step (and, with <c>schedule = plateau</c>, of the
/// metrics given to <see cref="ObserveMetric"/>, whose state is saved with the optimizer), so resuming restores it exactly.
/// Usage per micro-batch: <c>Backward(loss)</c>, then <c>Step()</c>; the update happens on every
/// <see cref="OptimizerOptions.GradientAccumulationSteps"/>-th call.
/// </summary>
internal sealed class TrainingOptimizer : IDisposable
{
    readonly IReadOnlyList<Parameter> _parameters;
    readonly OptimizerOptions _options;
    readonly AdamW? _adam;
    readonly AdamW8bit? _adam8;
    readonly MixedPrecisionModel? _mixed;
    int _microSteps;
    bool _nonFiniteLoss;

    public int OptimizerStep { get; private set; }
    public int SkippedSteps { get; private set; }
    public OptimizerOptions Options => _options;
    /// <summary>The reduce-on-plateau state with <c>schedule = plateau</c>; null otherwise.</summary>
    public PlateauSchedule? Plateau { get; }
    /// <summary>
    /// The data-parallel group whose gradients are summed before each update (each member's loss already carries
    /// its share of the global normalisation); clipping then sees the global norm. Solo by default.
    /// </summary>
    public Collectives.LearnerGroup Group { get; set; } = Collectives.LearnerGroup.Solo;

    /// <param name="mixedPrecision">With bf16 compute: the parameters are the fp32 master weights, and
    /// gradients come from the bf16 copy the loss was computed with.</param>
    public TrainingOptimizer(IEnumerable<Parameter> parameters, OptimizerOptions options, MixedPrecisionModel? mixedPrecision = null)
    {
        _mixed = mixedPrecision;
        _options = options.Validate();
        _parameters = parameters.Where(p => p.requires_grad).ToList();
        if (_parameters.Count == 0) throw new ArgumentException("no trainable parameters");
        if (options.Kind == OptimizerKind.AdamW8bit)
            _adam8 = new AdamW8bit(_parameters, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
        else
            _adam = optim.AdamW(_parameters, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
        if (options.Schedule == LrSchedule.Plateau) Plateau = new PlateauSchedule(options.Plateau, options.LearningRate);
        SetLearningRate(LearningRateAt(0));
    }

    /// <summary>
    /// The scheduled learning rate before optimizer step <paramref name="step"/> (0-based). With a plateau schedule:
    /// the warmup ramp to, then, the plateau schedule's current rate.
    /// </summary>
    public double LearningRateAt(int step)
    {
        var o = _options;
        if (Plateau is { } plateau)
            return o.WarmupSteps > 0 && step < o.WarmupSteps ? plateau.LearningRate * (step + 1) / o.WarmupSteps : plateau.LearningRate;
        return ScheduledRate(o, step + o.ScheduleOffset);
    }

    /// <summary>The learning rate a constant, linear or cosine schedule of <paramref name="o"/> gives before update <paramref name="step"/> (0-based), warmup included.</summary>
    static double ScheduledRate(OptimizerOptions o, int step)
    {
        if (o.WarmupSteps > 0 && step < o.WarmupSteps) return o.LearningRate * (step + 1) / o.WarmupSteps;
        double span = Math.Max(1, o.TotalSteps - o.WarmupSteps);
        double progress = Math.Clamp((step - o.WarmupSteps) / span, 0, 1);
        double factor = o.Schedule switch
        {
            LrSchedule.Constant => 1.0,
            LrSchedule.Linear => 1.0 - progress,
            LrSchedule.Cosine => 0.5 * (1 + Math.Cos(Math.PI * progress)),
            _ => 1.0,
        };
        return o.LearningRate * (o.MinLrRatio + (1 - o.MinLrRatio) * factor);
    }

    /// <summary>
    /// Gives the plateau schedule a held-out evaluation (the metric its mode names: a loss for min, a reward for max);
    /// returns true when it lowered the learning rate, which the next update uses. Only with <c>schedule = plateau</c>.
    /// </summary>
    public bool ObserveMetric(double metric)
    {
        if (Plateau is not { } plateau) throw new InvalidOperationException($"the optimizer's schedule is {_options.Schedule.ToString().ToLowerInvariant()}, not plateau: it takes no metric");
        bool reduced = plateau.Observe(metric);
        SetLearningRate(LearningRateAt(OptimizerStep));
        return reduced;
    }

    /// <summary>Backpropagates one micro-batch loss, scaled by 1/accumulation so gradients average.</summary>
    public void Backward(Tensor loss)
    {
        using var scope = NewDisposeScope();
        if (!float.IsFinite(loss.detach().cpu().item<float>())) _nonFiniteLoss = true;
        (loss / _options.GradientAccumulationSteps).backward();
        _mixed?.SyncGradients();
    }

    /// <summary>Ends a micro-batch; on the last of an accumulation window clips, checks and applies the update.</summary>
    public StepReport Step()
    {
        _microSteps++;
        double lr = LearningRateAt(OptimizerStep);
        if (_microSteps % _options.GradientAccumulationSteps != 0)
            return new StepReport(false, false, double.NaN, lr, OptimizerStep);

        using var scope = NewDisposeScope();
        if (!Group.IsSolo) ReduceOverGroup();
        double norm = _options.MaxGradNorm > 0
            ? nn.utils.clip_grad_norm_(_parameters, _options.MaxGradNorm)
            : TotalNorm();
        bool finite = !_nonFiniteLoss && double.IsFinite(norm);
        _nonFiniteLoss = false;
        if (!finite && _options.SkipNonFinite)
        {
            // Drop the update: gradients are poisoned, the weights and Adam moments stay as they were.
            ZeroGrad();
            SkippedSteps++;
            return new StepReport(false, true, norm, lr, OptimizerStep);
        }
        SetLearningRate(lr);
        if (_adam8 is not null) _adam8.Step();
        else StepAdamW(lr);
        ZeroGrad();
        _mixed?.SyncWeights();
        OptimizerStep++;
        Group.CheckAgreement(OptimizerStep, _parameters);
        return new StepReport(true, false, norm, lr, OptimizerStep);
    }

    /// <summary>Values of one parameter updated at once by <see cref="StepAdamW"/>: 2^20, a few MiB of temporaries.</summary>
    internal const int AdamChunkValues = 1 << 20;

    /// <summary>
    /// TorchSharp's AdamW update with its own state (moments and step counts, so saved state is the same file), the
    /// same operations in the same order, applied one parameter at a time and within a parameter
    /// <see cref="AdamChunkValues"/> values at a time, each in a dispose scope of its own. TorchSharp's <c>step()</c>
    /// frees its temporaries only when the whole update ends: the square root of every second moment and its scaled
    /// copy, twice the trained weights at the update's peak (0.9 GiB at GPT-2 124M); here they are a few MiB.
    /// Elementwise operations on disjoint slices give the same bits as on the whole tensor.
    /// </summary>
    void StepAdamW(double lr)
    {
        using var _ = no_grad();
        var o = _options;
        var states = _adam!.state_dict().State;
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i];
            using var scope = NewDisposeScope();
            if (p.grad is not { } grad) continue;
            var state = (TorchSharp.Modules.AdamW.State)states[i];
            state.step += 1;
            double bc1 = 1 - Math.Pow(o.Beta1, state.step), bc2Sqrt = Math.Sqrt(1 - Math.Pow(o.Beta2, state.step));
            double stepSize = lr / bc1;
            var (param, m, v) = (p.detach(), state.exp_avg, state.exp_avg_sq);
            void Update(Tensor pc, Tensor gc, Tensor mc, Tensor vc)
            {
                using var sliceScope = NewDisposeScope();
                pc.mul_(1 - lr * o.WeightDecay);
                mc.mul_(o.Beta1).add_(gc, alpha: 1 - o.Beta1);
                vc.mul_(o.Beta2).addcmul_(gc, gc, value: 1 - o.Beta2);
                var denom = (vc.sqrt() / bc2Sqrt).add_(o.Epsilon);
                pc.addcdiv_(mc, denom, value: -stepSize);
            }
            if (!(param.is_contiguous() && grad.is_contiguous() && m.is_contiguous() && v.is_contiguous()))
            {
                Update(param, grad, m, v);   // no flat view: the whole parameter at once
                continue;
            }
            var (P, G, M, V) = (param.view(-1), grad.view(-1), m.view(-1), v.view(-1));
            long n = P.shape[0];
            for (long start = 0; start < n; start += AdamChunkValues)
            {
                long len = Math.Min(AdamChunkValues, n - start);
                Update(P.narrow(0, start, len), G.narrow(0, start, len), M.narrow(0, start, len), V.narrow(0, start, len));
            }
        }
    }

    /// <summary>Sums the gradients (a missing one counts as zeros) and the non-finite-loss flag over the group.</summary>
    void ReduceOverGroup()
    {
        _nonFiniteLoss = Group.Sum(_nonFiniteLoss ? 1 : 0)[0] > 0;
        using (no_grad())
            foreach (var p in _parameters) p.grad ??= zeros_like(p);
        Group.Sum(_parameters.Select(p => p.grad!).ToList());
    }

    double TotalNorm()
    {
        double sum = 0;
        foreach (var p in _parameters)
            if (p.grad is { } g) sum += g.detach().square().sum().item<float>();
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Drops the gradients (set to none, as torch's <c>zero_grad()</c> does by default; TorchSharp's optimizers zero
    /// them in place): between updates — rollout, evaluation, the next forward pass — they hold no memory, and backward
    /// allocates them as activations are freed.
    /// </summary>
    void ZeroGrad()
    {
        foreach (var p in _parameters)
        {
            if (p.grad is not { } g) continue;
            p.grad = null;
            g.Dispose();
        }
    }

    void SetLearningRate(double lr)
    {
        if (_adam8 is not null) _adam8.LearningRate = lr;
        else foreach (var group in _adam!.ParamGroups) group.LearningRate = lr;
    }

    /// <summary>Saves Adam's moments and the step counters (training state for exact resume).</summary>
    public void Save(string path)
    {
        if (_adam8 is not null) _adam8.Save(path);
        else _adam!.save_state_dict(path);
        File.WriteAllText(path + ".steps", $"{OptimizerStep} {SkippedSteps} {_microSteps}" + (Plateau is null ? "" : " " + Plateau.SaveState()));
    }

    public void Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"optimizer state not found: {path}", path);
        // State of the other kind cannot be carried over: say which kind wrote it rather than fail inside libtorch.
        bool eightBit = AdamW8bit.IsOwnFormat(path);
        if (eightBit != (_adam8 is not null))
            throw new InvalidDataException($"{path}: optimizer state of kind {(eightBit ? "adamw-8bit" : "adamw")}, and optimizer.kind is {OptimizerOptions.KindName(_options.Kind)}");
        if (_adam8 is not null) _adam8.Load(path);
        else _adam!.load_state_dict(path);
        var parts = File.ReadAllText(path + ".steps").Split(' ');
        (OptimizerStep, SkippedSteps, _microSteps) = (int.Parse(parts[0]), int.Parse(parts[1]), int.Parse(parts[2]));
        // A plateau schedule's state follows the counters (absent in state saved by other schedules).
        if (Plateau is not null && parts.Length > 3) Plateau.LoadState(string.Join(' ', parts[3..]));
        SetLearningRate(LearningRateAt(OptimizerStep));
    }

    public void Dispose()
    {
        _adam?.Dispose();
        _adam8?.Dispose();
    }
}
