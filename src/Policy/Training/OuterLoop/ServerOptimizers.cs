using static TorchSharp.torch;

namespace Rlft.Policy.Training;

/// <summary>How the server moves the global weights along the aggregated update Δ (a pseudo-gradient pointing downhill).</summary>
internal interface IServerOptimizer
{
    void Step(WeightSet global, WeightSet update);
}

/// <summary>x ← x + lr · Δ: FedAvg at lr = 1, Reptile's outer step at lr = ε.</summary>
internal sealed class ServerSgd(double learningRate) : IServerOptimizer
{
    public void Step(WeightSet global, WeightSet update) => global.AddScaled(update, learningRate);
}

/// <summary>
/// The adaptive server optimizers of Reddi et al. (2021, "Adaptive Federated Optimization", Algorithm 2): a first
/// moment m ← β₁m + (1−β₁)Δ, a second moment v that each rule updates its own way, and x ← x + lr · m / (√v + τ).
/// No bias correction, as in the paper; m and v start at zero; τ (default 1e-3) bounds the adaptivity.
/// </summary>
internal abstract class AdaptiveServer(double learningRate, double beta1, double tau) : IServerOptimizer, IDisposable
{
    WeightSet? _m, _v;

    /// <summary>v ← the rule's new second moment, in place, from Δ² (<paramref name="squared"/>).</summary>
    protected abstract void UpdateSecondMoment(Tensor v, Tensor squared);

    public void Step(WeightSet global, WeightSet update)
    {
        using var _ = no_grad();
        _m ??= WeightSet.ZerosLike(global);
        _v ??= WeightSet.ZerosLike(global);
        foreach (var (name, x) in global.Items)
        {
            using var scope = NewDisposeScope();
            var d = update[name];
            var m = _m[name].mul_(beta1).add_(d, alpha: 1 - beta1);
            var v = _v[name];
            UpdateSecondMoment(v, d.square());
            x.add_(m / (v.sqrt() + tau), alpha: learningRate);
        }
    }

    public void Dispose() { _m?.Dispose(); _v?.Dispose(); }
}

/// <summary>FedAdam: v ← β₂v + (1−β₂)Δ².</summary>
internal sealed class ServerAdam(double learningRate, double beta1 = 0.9, double beta2 = 0.99, double tau = 1e-3)
    : AdaptiveServer(learningRate, beta1, tau)
{
    protected override void UpdateSecondMoment(Tensor v, Tensor squared) => v.mul_(beta2).add_(squared, alpha: 1 - beta2);
}

/// <summary>FedAdagrad: v ← v + Δ² (the sum of every round's squared update).</summary>
internal sealed class ServerAdagrad(double learningRate, double beta1 = 0.9, double tau = 1e-3)
    : AdaptiveServer(learningRate, beta1, tau)
{
    protected override void UpdateSecondMoment(Tensor v, Tensor squared) => v.add_(squared);
}

/// <summary>FedYogi: v ← v − (1−β₂) · Δ² · sign(v − Δ²) (Zaheer et al., 2018): v moves toward Δ² by a step proportional to Δ², not to their difference.</summary>
internal sealed class ServerYogi(double learningRate, double beta1 = 0.9, double beta2 = 0.99, double tau = 1e-3)
    : AdaptiveServer(learningRate, beta1, tau)
{
    protected override void UpdateSecondMoment(Tensor v, Tensor squared)
    {
        using var step = squared * (v - squared).sign();
        v.add_(step, alpha: -(1 - beta2));
    }
}
