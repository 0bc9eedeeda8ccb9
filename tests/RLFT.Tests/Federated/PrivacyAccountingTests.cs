using Rlft.Policy.Training;

namespace Rlft.Tests.Federated;

/// <summary>
/// The RDP accountant against the values published in the test suites of the RDP accountants that Opacus' is ported
/// from (tensorflow/privacy's rdp_accountant_test.py) and of Google's dp_accounting (its ε conversion), within 1%.
/// </summary>
public class PrivacyAccountingTests
{
    static void Within1Percent(double expected, double actual) =>
        Assert.True(Math.Abs(actual - expected) <= 0.01 * Math.Abs(expected), $"expected {expected} within 1%, got {actual}");

    [Fact]
    public void Rdp_of_the_sampled_gaussian_matches_tensorflow_privacy()
    {
        // test_compute_rdp_sequence: q = 0.01, σ = 2.5, 50 steps, fractional and integer orders.
        double[] orders = [1.5, 2.5, 5, 50, 100, double.PositiveInfinity];
        double[] published = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307];
        var rdp = RdpAccountant.Compute(0.01, 2.5, 50, orders);
        for (int i = 0; i < published.Length; i++) Within1Percent(published[i], rdp[i]);
        Assert.True(double.IsPositiveInfinity(rdp[^1]));
        // test_compute_rdp: q = 0.1, σ = 2, 10 steps, order 5 → 0.07737.
        Within1Percent(0.07737, RdpAccountant.Compute(0.1, 2, 10, [5])[0]);
    }

    /// <summary>The conversion tensorflow/privacy's get_privacy_spent used when these values were published: ε = min_α rdp − log δ / (α − 1).</summary>
    static (double Epsilon, double Order) Classic(double[] orders, double[] rdp, double delta) =>
        orders.Select((a, i) => (rdp[i] - Math.Log(delta) / (a - 1), a)).MinBy(x => x.Item1);

    [Fact]
    public void Epsilon_of_ten_thousand_sampled_steps_matches_tensorflow_privacy()
    {
        // test_get_privacy_spent: q = 0.01, σ = 4, 10 000 steps, orders 2..32, δ = 1e-5 → ε = 1.258575 at order 20.
        double[] orders = Enumerable.Range(2, 31).Select(x => (double)x).ToArray();
        var (eps, order) = Classic(orders, RdpAccountant.Compute(0.01, 4, 10_000, orders), 1e-5);
        Within1Percent(1.258575, eps);
        Assert.Equal(20, order);
    }

    [Fact]
    public void Epsilon_of_composed_mechanisms_at_fractional_orders_matches_tensorflow_privacy()
    {
        // test_compute_privacy_loss: (q, σ, steps) = (0.01, 4, 10 000) then (0.1, 2, 100), δ = 1e-5 → ε = 3.276237 at order 8.
        double[] orders = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256];
        var accountant = new RdpAccountant(orders);
        accountant.Step(0.01, 4, 10_000);
        accountant.Step(0.1, 2, 100);
        var (eps, order) = Classic(orders, accountant.Rdp.ToArray(), 1e-5);
        Within1Percent(3.276237, eps);
        Assert.Equal(8, order);
    }

    [Fact]
    public void Conversion_to_epsilon_matches_dp_accounting()
    {
        // test_compute_epsilon_delta_pure_dp: rdp 1.1 at orders 2..32, δ = 1e-5 → ε = 1.32783806176 at order 32.
        double[] orders = Enumerable.Range(2, 31).Select(x => (double)x).ToArray();
        var (eps, order) = RdpAccountant.Epsilon(orders, orders.Select(_ => 1.1).ToArray(), 1e-5);
        Within1Percent(1.32783806176, eps);
        Assert.Equal(32, order);

        // test_compute_epsilon_delta_gaussian: q = 1, σ = 4.530877117 is exactly (1, 1e-6)-DP.
        double[] fine = Enumerable.Range(101, 9900).Select(x => x / 100.0).ToArray();
        Within1Percent(1.0, RdpAccountant.Epsilon(fine, RdpAccountant.Compute(1, 4.530877117, 1, fine), 1e-6).Epsilon);
    }

    [Fact]
    public void Epsilon_grows_with_rounds_and_shrinks_with_noise()
    {
        var few = new RdpAccountant();
        few.Step(0.5, 1.0, 10);
        var many = new RdpAccountant();
        many.Step(0.5, 1.0, 40);
        var noisier = new RdpAccountant();
        noisier.Step(0.5, 2.0, 40);
        Assert.Equal(0, new RdpAccountant().Epsilon(1e-5));
        Assert.True(few.Epsilon(1e-5) < many.Epsilon(1e-5));
        Assert.True(noisier.Epsilon(1e-5) < many.Epsilon(1e-5));
    }
}
