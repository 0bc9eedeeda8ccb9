using Rlft.Policy.Training.Regularization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

public class RegularizationTests
{
    static Parameter P(double[] values, long[] shape) => new(tensor(values, shape, dtype: float64));

    static void Set(Parameter p, double[] values)
    {
        using var _ = no_grad();
        p.copy_(tensor(values, p.shape, dtype: float64));
    }

    static double[] Grad(Tensor penalty, Parameter p)
    {
        var g = autograd.grad([penalty], [p], retain_graph: true)[0];
        return g.data<double>().ToArray();
    }

    static List<(string, Parameter)> TwoParameters(out Parameter a, out Parameter b)
    {
        a = P([1.0, 2.0], [2]);
        b = P([3.0], [1, 1]);
        return [("a", a), ("b", b)];
    }

    [Fact]
    public void L2_sp_is_weight_times_the_squared_distance_from_the_start_and_its_gradient_twice_weight_times_the_step()
    {
        using var penalty = new L2SpPenalty(TwoParameters(out var a, out var b), weight: 0.5);
        Assert.Equal(0.0, penalty.Penalty().item<double>());
        Set(a, [1.5, 1.0]);
        Set(b, [5.0]);
        var value = penalty.Penalty();
        // 0.5 · ((0.5)² + (−1)² + 2²) = 0.5 · 5.25
        Assert.Equal(2.625, value.item<double>(), 12);
        Assert.Equal([0.5, -1.0], Grad(value, a));                           // 2 · 0.5 · (θ − θ₀)
        Assert.Equal([2.0], Grad(value, b));
        Assert.Equal([1.0, 2.0], penalty.Start("a").data<double>().ToArray()); // the start is a snapshot, not a view
        Assert.Equal("loss/l2_sp", penalty.Metric);
    }

    [Fact]
    public void Ewc_is_half_the_weight_times_the_fisher_weighted_squared_step_from_the_anchor()
    {
        var parameters = TwoParameters(out var a, out var b);
        var fisher = new Dictionary<string, Tensor> { ["a"] = tensor(new[] { 2.0, 0.5 }, dtype: float64), ["b"] = tensor(new[] { 4.0 }, [1, 1], dtype: float64) };
        using var penalty = new EwcPenalty(parameters, fisher, weight: 0.2);
        Assert.Equal(0.0, penalty.Penalty().item<double>());
        Set(a, [1.5, 1.0]);
        Set(b, [5.0]);
        var value = penalty.Penalty();
        // 0.2 / 2 · (2 · 0.25 + 0.5 · 1 + 4 · 4) = 0.1 · 17
        Assert.Equal(1.7, value.item<double>(), 12);
        var ga = Grad(value, a);                                               // 0.2 · F ⊙ (θ − θ*)
        Assert.Equal(0.2, ga[0], 12);
        Assert.Equal(-0.1, ga[1], 12);
        Assert.Equal(1.6, Grad(value, b)[0], 12);

        // An explicit anchor θ* instead of the current weights.
        var anchor = new Dictionary<string, Tensor> { ["a"] = tensor(new[] { 1.5, 0.0 }, dtype: float64), ["b"] = tensor(new[] { 5.0 }, [1, 1], dtype: float64) };
        using var anchored = new EwcPenalty(parameters, fisher, weight: 2, anchor);
        Assert.Equal(0.5, anchored.Penalty().item<double>(), 12);             // 2/2 · 0.5 · (1 − 0)²
    }

    [Fact]
    public void Bad_penalty_settings_are_refused_with_a_reason()
    {
        var parameters = TwoParameters(out _, out _);
        Assert.Contains("weight", Assert.Throws<ArgumentOutOfRangeException>(() => new L2SpPenalty(parameters, -1)).Message);
        Assert.Contains("no entry for parameter 'b'", Assert.Throws<ArgumentException>(() =>
            new EwcPenalty(parameters, new Dictionary<string, Tensor> { ["a"] = zeros(2, dtype: float64) }, 1)).Message);
        Assert.Contains("has shape [3]", Assert.Throws<ArgumentException>(() =>
            new EwcPenalty(parameters, new Dictionary<string, Tensor> { ["a"] = zeros(3, dtype: float64), ["b"] = zeros(1, 1, dtype: float64) }, 1)).Message);
    }

    /// <summary>F_i = mean over examples of (∂ log p / ∂θ_i)², each derivative a central difference.</summary>
    static double FiniteDifferenceFisher(Parameter p, long flatIndex, int count, Func<int, double> logLikelihood, double eps)
    {
        using var _ = no_grad();
        var flat = p.view(-1);
        double original = flat[flatIndex].item<double>();
        double sum = 0;
        for (int n = 0; n < count; n++)
        {
            flat[flatIndex] = original + eps;
            double up = logLikelihood(n);
            flat[flatIndex] = original - eps;
            double down = logLikelihood(n);
            flat[flatIndex] = original;
            double d = (up - down) / (2 * eps);
            sum += d * d;
        }
        return sum / count;
    }

    [Fact]
    public void Fisher_diagonal_matches_finite_differences_on_a_softmax_classifier_everywhere()
    {
        manual_seed(3);
        var w = new Parameter(randn(4, 3, dtype: float64));
        var bias = new Parameter(randn(4, dtype: float64));
        var x = randn(6, 3, dtype: float64);
        long[] y = [0, 3, 1, 1, 2, 0];
        Tensor Ll(int n) => nn.functional.log_softmax(w.matmul(x[n]) + bias, 0)[y[n]];
        var fisher = FisherDiagonal.Estimate([("w", w), ("bias", bias)], 6, Ll);
        foreach (var (name, p) in new[] { ("w", w), ("bias", bias) })
            for (long i = 0; i < p.numel(); i++)
            {
                double fd = FiniteDifferenceFisher(p, i, 6, n => Ll(n).item<double>(), 1e-6);
                Assert.Equal(fd, fisher[name].view(-1)[i].item<double>(), 8);
            }
        Assert.Null(w.grad);                                                   // the parameters' gradients are untouched
    }

    [Fact]
    public void Fisher_diagonal_of_the_tiny_policy_matches_finite_differences()
    {
        var policy = TinyTask.Load();
        policy.Model.to(float64);
        var examples = TinyTask.Sft(4, 21).Select(e => policy.Encoder.PromptCompletion(e.Item1, e.Item2)).ToList();
        var named = Rlft.Policy.Training.Regularization.TrainableParameters.Of(policy.Model);
        var fisher = FisherDiagonal.Estimate(policy, examples);
        Assert.Equal(named.Select(p => p.Name).Order(), fisher.Keys.Order());

        double Ll(int n)
        {
            using var scope = NewDisposeScope();
            var lp = policy.LogProbsOf([examples[n]]);
            return (lp.LogProbs * lp.Mask).sum().item<double>();
        }
        // A few coordinates of different kinds of parameter: the largest Fisher entry of each, so the check is not of zeros.
        var checkedParameters = named.Where(p => p.Name.EndsWith("wte.weight") || p.Name.EndsWith("h.0.attn.c_attn.weight") || p.Name.EndsWith("ln_f.bias")).ToList();
        Assert.Equal(3, checkedParameters.Count);
        foreach (var (name, p) in checkedParameters)
        {
            long i = fisher[name].view(-1).argmax().item<long>();
            double expected = FiniteDifferenceFisher(p, i, examples.Count, Ll, 1e-5);
            double actual = fisher[name].view(-1)[i].item<double>();
            Assert.True(actual > 1e-6, $"{name}[{i}]: Fisher {actual}");
            Assert.True(Math.Abs(actual - expected) <= 1e-6 * Math.Max(1, Math.Abs(expected)), $"{name}[{i}]: Fisher {actual}, finite differences {expected}");
        }
    }

    [Fact]
    public void Fisher_diagonals_add_elementwise()
    {
        var a = new Dictionary<string, Tensor> { ["p"] = tensor(new[] { 1.0, 2.0 }) };
        var b = new Dictionary<string, Tensor> { ["p"] = tensor(new[] { 0.5, -1.0 }) };
        Assert.Equal([1.5, 1.0], FisherDiagonal.Add(a, b)["p"].data<double>().ToArray());
        Assert.Throws<ArgumentException>(() => FisherDiagonal.Add(a, new Dictionary<string, Tensor> { ["q"] = tensor(new[] { 1.0, 2.0 }) }));
    }
}

/// <summary>Penalties inside the trainers: added to the loss, reported, and holding the weights back.</summary>
public class PenaltyInTrainerTests
{
    static double Distance(IEnumerable<(string Name, Parameter P)> now, IReadOnlyDictionary<string, Tensor> start)
    {
        using var _ = no_grad();
        return now.Sum(p => (p.P - start[p.Name]).square().sum().item<float>());
    }

    [Fact]
    public void An_l2_sp_penalty_is_reported_and_keeps_sft_nearer_its_start()
    {
        var data = TinyTask.Sft(64, 3);
        double Run(double weight, out List<double> reported)
        {
            var policy = TinyTask.Load();
            var named = TrainableParameters.Of(policy.Model);
            var start = TrainableParameters.Snapshot(named);
            using var l2sp = new L2SpPenalty(named, weight);
            using var sft = new Rlft.Policy.Training.Trainers.SftTrainer(policy, new Rlft.Policy.Training.OptimizerOptions { LearningRate = 3e-3, TotalSteps = 20 }) { Penalties = [l2sp] };
            reported = [];
            for (int s = 0; s < 20; s++)
            {
                double expected = weight * Distance(named, start);                // the penalty at the weights the step starts from
                var m = sft.Step(data.Skip(s % 4 * 16).Take(16).ToList());
                Assert.Equal(expected, m["loss/l2_sp"], Math.Max(1e-6, expected * 1e-4));
                reported.Add(m["loss/l2_sp"]);
            }
            return Distance(named, start);
        }
        double free = Run(0, out var none), held = Run(50, out var penalties);
        Assert.All(none, v => Assert.Equal(0, v));
        Assert.Equal(0, penalties[0]);                                          // at the start θ = θ₀
        Assert.True(penalties[^1] > 0);
        Assert.True(held < 0.5 * free, $"squared distance from the start: {held:G4} with l2-sp, {free:G4} without");
    }
}
