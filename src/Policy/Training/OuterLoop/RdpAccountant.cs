namespace Rlft.Policy.Training;

/// <summary>
/// Rényi-DP accounting for the subsampled Gaussian mechanism (Mironov, Talwar &amp; Zhang, 2019, "Rényi Differential
/// Privacy of the Sampled Gaussian Mechanism"): each round samples every client with probability q and adds Gaussian
/// noise of multiplier σ to the clipped sum. The RDP of one round at order α is log(A_α)/(α−1), A_α computed exactly
/// for integer α (a binomial sum) and by the paper's series for fractional α; rounds compose by adding RDP; ε at δ is
/// the best over the orders of the conversion of Balle et al. (2020): ε = rdp + log(1 − 1/α) − (log δ + log α)/(α − 1).
/// The same computations as Opacus' RDP accountant (ported from tensorflow/privacy's), with its default orders; the
/// fractional series keeps the signs of the generalized binomial coefficients, as they do (Google's newer
/// dp_accounting sums their magnitudes, a slightly looser bound: 6.71e-4 instead of 6.50e-4 at q = 0.01, σ = 2.5,
/// 50 steps, order 1.5).
/// </summary>
internal sealed class RdpAccountant
{
    /// <summary>The orders Opacus uses by default: 1.1, 1.2, …, 10.9, then 12, 13, …, 63.</summary>
    public static readonly IReadOnlyList<double> DefaultOrders =
        Enumerable.Range(1, 99).Select(x => 1 + x / 10.0).Concat(Enumerable.Range(12, 52).Select(x => (double)x)).ToArray();

    readonly double[] _orders;
    readonly double[] _rdp;

    public RdpAccountant(IReadOnlyList<double>? orders = null)
    {
        _orders = (orders ?? DefaultOrders).ToArray();
        if (_orders.Any(a => !(a > 1))) throw new ArgumentOutOfRangeException(nameof(orders), "every Rényi order must be > 1");
        _rdp = new double[_orders.Length];
    }

    /// <summary>The RDP so far at each order.</summary>
    public IReadOnlyList<double> Rdp => _rdp;

    /// <summary>Adds <paramref name="steps"/> rounds of sampling rate <paramref name="q"/> and noise multiplier <paramref name="sigma"/>.</summary>
    public void Step(double q, double sigma, int steps = 1)
    {
        var rdp = Compute(q, sigma, steps, _orders);
        for (int i = 0; i < _rdp.Length; i++) _rdp[i] += rdp[i];
    }

    /// <summary>ε at <paramref name="delta"/> for what was accounted so far (0 before any round).</summary>
    public double Epsilon(double delta) => Epsilon(_orders, _rdp, delta).Epsilon;

    /// <summary>The RDP of <paramref name="steps"/> rounds at each order: steps · log(A_α)/(α−1).</summary>
    public static double[] Compute(double q, double sigma, int steps, IReadOnlyList<double> orders)
    {
        if (!(q >= 0 && q <= 1)) throw new ArgumentOutOfRangeException(nameof(q), $"the sampling rate must be in [0, 1], got {q}");
        if (!(sigma >= 0)) throw new ArgumentOutOfRangeException(nameof(sigma), $"the noise multiplier must be >= 0, got {sigma}");
        return orders.Select(a => steps * Single(q, sigma, a)).ToArray();
    }

    static double Single(double q, double sigma, double alpha)
    {
        if (q == 0) return 0;
        if (sigma == 0 || double.IsPositiveInfinity(alpha)) return double.PositiveInfinity;
        if (q == 1) return alpha / (2 * sigma * sigma);
        double logA = alpha == Math.Floor(alpha) ? LogAInteger(q, sigma, (int)alpha) : LogAFractional(q, sigma, alpha);
        return logA / (alpha - 1);
    }

    /// <summary>log A_α = log Σ_{i=0..α} C(α, i) q^i (1−q)^(α−i) exp((i² − i)/(2σ²)), for integer α.</summary>
    static double LogAInteger(double q, double sigma, int alpha)
    {
        double logA = double.NegativeInfinity, logBinom = 0;
        for (int i = 0; i <= alpha; i++)
        {
            if (i > 0) logBinom += Math.Log(alpha - i + 1) - Math.Log(i);
            double term = logBinom + i * Math.Log(q) + (alpha - i) * Math.Log(1 - q) + (i * (double)i - i) / (2 * sigma * sigma);
            logA = LogAdd(logA, term);
        }
        return logA;
    }

    /// <summary>log A_α for fractional α: the two-sided series of Mironov et al. (2019, §3.3), summed until its terms fall below e⁻³⁰.</summary>
    static double LogAFractional(double q, double sigma, double alpha)
    {
        double logA0 = double.NegativeInfinity, logA1 = double.NegativeInfinity;
        double z0 = sigma * sigma * Math.Log(1 / q - 1) + 0.5;
        double logBinom = 0;                                                  // log |C(α, i)|
        int sign = 1;                                                         // sign of C(α, i)
        for (int i = 0; ; i++)
        {
            if (i > 0)
            {
                double factor = (alpha - i + 1) / i;
                if (factor < 0) sign = -sign;
                logBinom += Math.Log(Math.Abs(factor));
            }
            double j = alpha - i;
            double logT0 = logBinom + i * Math.Log(q) + j * Math.Log(1 - q);
            double logT1 = logBinom + j * Math.Log(q) + i * Math.Log(1 - q);
            double logE0 = Math.Log(0.5) + LogErfc((i - z0) / (Math.Sqrt(2) * sigma));
            double logE1 = Math.Log(0.5) + LogErfc((z0 - j) / (Math.Sqrt(2) * sigma));
            double logS0 = logT0 + (i * (double)i - i) / (2 * sigma * sigma) + logE0;
            double logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
            if (sign > 0) { logA0 = LogAdd(logA0, logS0); logA1 = LogAdd(logA1, logS1); }
            else { logA0 = LogSub(logA0, logS0); logA1 = LogSub(logA1, logS1); }
            if (Math.Max(logS0, logS1) < -30) break;
            if (i > 100_000) throw new InvalidOperationException($"the RDP series at order {alpha} did not converge");
        }
        return LogAdd(logA0, logA1);
    }

    /// <summary>The smallest ε over the orders at which RDP <paramref name="rdp"/> gives (ε, δ)-DP, and that order.</summary>
    public static (double Epsilon, double Order) Epsilon(IReadOnlyList<double> orders, IReadOnlyList<double> rdp, double delta)
    {
        if (!(delta > 0 && delta < 1)) throw new ArgumentOutOfRangeException(nameof(delta), $"delta must be in (0, 1), got {delta}");
        double best = double.PositiveInfinity, bestOrder = double.NaN;
        for (int i = 0; i < orders.Count; i++)
        {
            double a = orders[i], r = rdp[i];
            double eps = delta * delta + ExpM1(-r) >= 0 ? 0
                : a > 1.01 ? r + Math.Log(1 - 1 / a) - (Math.Log(delta) + Math.Log(a)) / (a - 1)
                : double.PositiveInfinity;
            if (eps < best) (best, bestOrder) = (eps, a);
        }
        return (Math.Max(0, best), bestOrder);
    }

    static double LogAdd(double x, double y)
    {
        if (double.IsNegativeInfinity(x)) return y;
        if (double.IsNegativeInfinity(y)) return x;
        double hi = Math.Max(x, y), lo = Math.Min(x, y);
        return hi + Math.Log(1 + Math.Exp(lo - hi));
    }

    /// <summary>log(exp(x) − exp(y)) for x ≥ y.</summary>
    static double LogSub(double x, double y)
    {
        if (double.IsNegativeInfinity(y)) return x;
        if (y >= x) return double.NegativeInfinity;                          // the terms cancelled (up to rounding)
        return x + Math.Log(-ExpM1(y - x));
    }

    static double ExpM1(double u) => Math.Abs(u) < 1e-5 ? u + u * u / 2 + u * u * u / 6 : Math.Exp(u) - 1;

    /// <summary>
    /// log erfc(x) without underflow for large x: erfc(x) = t · exp(−x² + P(t)), t = 1/(1 + x/2), P the Chebyshev fit of
    /// Numerical Recipes' erfcc (relative error below 1.2e-7 everywhere); erfc(−x) = 2 − erfc(x).
    /// </summary>
    internal static double LogErfc(double x)
    {
        double z = Math.Abs(x);
        double t = 1 / (1 + 0.5 * z);
        double p = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807
            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        double logErfcZ = Math.Log(t) + p;
        return x >= 0 ? logErfcZ : Math.Log(2 - Math.Exp(logErfcZ));
    }
}
