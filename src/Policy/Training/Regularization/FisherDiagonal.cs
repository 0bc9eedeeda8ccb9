using Rlft.Policy.Chat;
using Rlft.Policy.Training.Trainers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Policy.Training.Regularization;

/// <summary>
/// The diagonal of the (empirical) Fisher information for <see cref="EwcPenalty"/>:
/// <c>F_i = (1/N) Σ_n (∂ log p(y_n | x_n; θ) / ∂θ_i)²</c>, the mean over N examples of each example's squared
/// log-likelihood gradient. Examples are differentiated one at a time (the square of a batch's summed gradient is
/// not the sum of the squares); <c>torch.autograd.grad</c> is used, so the parameters' <c>.grad</c> are untouched.
/// </summary>
internal static class FisherDiagonal
{
    /// <summary>
    /// The Fisher diagonal over <paramref name="count"/> examples; <paramref name="logLikelihood"/>(n) is example n's
    /// log-likelihood as a differentiable scalar. A parameter the log-likelihood does not reach gets zeros.
    /// </summary>
    public static Dictionary<string, Tensor> Estimate(IReadOnlyList<(string Name, Parameter Parameter)> parameters, int count, Func<int, Tensor> logLikelihood)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), "ewc: the Fisher diagonal needs at least one example");
        var sums = parameters.ToDictionary(p => p.Name, p => zeros_like(p.Parameter, requires_grad: false).DetachFromDisposeScope());
        var wrt = parameters.Select(p => (Tensor)p.Parameter).ToList();
        for (int n = 0; n < count; n++)
        {
            using var scope = NewDisposeScope();
            using var grad = enable_grad();
            var ll = logLikelihood(n);                                         // scalar
            var grads = autograd.grad([ll], wrt, allow_unused: true);
            using var _ = no_grad();
            for (int i = 0; i < parameters.Count; i++)
                if (!grads[i].IsInvalid) sums[parameters[i].Name].add_(grads[i].square());
        }
        foreach (var f in sums.Values) f.div_(count);
        return sums;
    }

    /// <summary>
    /// The Fisher diagonal of a policy on encoded examples: each example's log-likelihood is the sum of its
    /// loss-carrying tokens' log-probabilities (the completion, or a conversation's assistant turns), computed
    /// without dropout. <paramref name="parameters"/> default to the model's trainable ones.
    /// </summary>
    public static Dictionary<string, Tensor> Estimate(PolicyModel policy, IReadOnlyList<EncodedExample> examples,
        IReadOnlyList<(string Name, Parameter Parameter)>? parameters = null)
    {
        parameters ??= TrainableParameters.Of(policy.Model);
        bool training = policy.Model.training;
        policy.Model.eval();
        try
        {
            return Estimate(parameters, examples.Count, n =>
            {
                var lp = policy.LogProbsOf([examples[n]]);
                return (lp.LogProbs * lp.Mask).sum();                         // (1, C) → scalar
            });
        }
        finally { policy.Model.train(training); }
    }

    /// <summary>The elementwise sum of two Fisher diagonals (new tensors; the inputs are left as they are).</summary>
    public static Dictionary<string, Tensor> Add(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
    {
        if (!a.Keys.ToHashSet().SetEquals(b.Keys)) throw new ArgumentException("ewc: the Fisher diagonals cover different parameters");
        using var _ = no_grad();
        return a.ToDictionary(kv => kv.Key, kv => (kv.Value + b[kv.Key]).DetachFromDisposeScope());
    }
}
