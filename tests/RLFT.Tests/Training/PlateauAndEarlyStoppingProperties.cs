using FsCheck;
using FsCheck.Xunit;
using Rlft.Policy.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>
/// Reduce-on-plateau and early stopping over random metric sequences (values from a small set, so that ties and long
/// plateaus are common). "Improves" is read directly off the sequence: a new strict best of everything before it.
/// </summary>
[Properties(MaxTest = 300)]
public class PlateauAndEarlyStoppingProperties
{
    static double[] Metrics(int[] raw) => raw.Select(x => (double)(Math.Abs(x % 7))).ToArray();

    /// <summary>Whether evaluation t is a new strict best (smaller for min, larger for max) of the sequence so far.</summary>
    static bool[] NewBest(double[] m, bool max) =>
        m.Select((x, t) => t == 0 || (max ? x > m[..t].Max() : x < m[..t].Min())).ToArray();

    [Property]
    public bool The_lr_drops_exactly_on_the_patience_th_non_improving_evaluation_and_never_below_min_lr(int[] raw, byte p, byte factorPct, bool max, byte floorPct)
    {
        var metrics = Metrics(raw);
        int patience = 1 + p % 4;
        double factor = (1 + factorPct % 90) / 100.0, minLr = (floorPct % 50) / 100.0 * 0.1;
        var schedule = new PlateauSchedule(new PlateauOptions { Factor = factor, Patience = patience, MinLr = minLr, Mode = max ? MetricMode.Max : MetricMode.Min }, 0.1);
        var best = NewBest(metrics, max);
        int run = 0;                                                    // non-improving evaluations since the last improvement or drop
        double lr = 0.1;
        for (int t = 0; t < metrics.Length; t++)
        {
            bool reduced = schedule.Observe(metrics[t]);
            run = best[t] ? 0 : run + 1;
            bool due = run == patience;
            if (due) run = 0;
            double expected = due ? Math.Max(lr * factor, minLr) : lr;
            if (reduced != (expected < lr)) return false;               // drops only when due, and then unless already at min-lr
            if (schedule.LearningRate != expected || schedule.LearningRate < minLr) return false;
            lr = expected;
        }
        return true;
    }

    [Property]
    public bool The_lr_never_rises_and_drops_are_at_least_patience_evaluations_apart(int[] raw, byte p, bool max)
    {
        var metrics = Metrics(raw);
        int patience = 1 + p % 4;
        var schedule = new PlateauSchedule(new PlateauOptions { Factor = 0.5, Patience = patience, Mode = max ? MetricMode.Max : MetricMode.Min }, 1.0);
        double lr = 1.0;
        int lastDrop = -1;
        var best = NewBest(metrics, max);
        for (int t = 0; t < metrics.Length; t++)
        {
            if (schedule.Observe(metrics[t]))
            {
                // The patience evaluations up to this one all failed to improve, and none of them came before the last drop.
                if (t - lastDrop < patience || Enumerable.Range(t - patience + 1, patience).Any(i => best[i])) return false;
                lastDrop = t;
            }
            if (schedule.LearningRate > lr) return false;
            lr = schedule.LearningRate;
        }
        return true;
    }

    [Property]
    public bool Early_stopping_stops_after_patience_bad_evaluations_and_restores_the_best_weights(int[] raw, byte p)
    {
        var losses = Metrics(raw);
        int patience = 1 + p % 4;
        // One parameter whose value is the index of the evaluation it was measured at: restoring shows which was kept.
        var w = new Parameter(zeros(1, dtype: float64));
        using var stopping = new EarlyStopping(new EarlyStoppingOptions { Patience = patience }, [("w", w)]);
        var best = NewBest(losses, max: false);
        int run = 0, stoppedAt = -1;
        for (int t = 0; t < losses.Length; t++)
        {
            using (no_grad()) w.fill_(t);
            var report = stopping.Observe(losses[t], t);
            run = best[t] ? 0 : run + 1;
            if (report.Improved != best[t] || report.Stop != (run >= patience)) return false;
            if (report.Stop) { stoppedAt = t; break; }
        }
        var seen = losses.Take(stoppedAt < 0 ? losses.Length : stoppedAt + 1).ToArray();
        if (seen.Length == 0) return !stopping.RestoreBest();
        int bestIndex = Array.IndexOf(seen, seen.Min());                // the first evaluation of the lowest loss
        return stopping.RestoreBest() && w.item<double>() == bestIndex && stopping.BestLoss == seen.Min() && stopping.BestStep == bestIndex;
    }

    [Fact]
    public void Min_delta_counts_small_gains_as_no_improvement()
    {
        var schedule = new PlateauSchedule(new PlateauOptions { Patience = 2, MinDelta = 0.5, Factor = 0.5 }, 1.0);
        Assert.False(schedule.Observe(10));                             // first: the best
        Assert.False(schedule.Observe(9.6));                            // 0.4 better: not by more than min-delta (1 bad)
        Assert.True(schedule.Observe(9.55));                            // still not (2 bad = patience): halved
        Assert.Equal(0.5, schedule.LearningRate);
        Assert.False(schedule.Observe(9.4));                            // 0.6 better than the best 10: improves
        Assert.Equal(9.4, schedule.Best);
        Assert.Equal(0, schedule.BadEvaluations);
        var stopping = new EarlyStopping(new EarlyStoppingOptions { Patience = 1, MinDelta = 0.5 }, [("w", new Parameter(zeros(1)))]);
        Assert.False(stopping.Observe(10, 0).Stop);
        Assert.True(stopping.Observe(9.6, 1).Stop);
    }

    [Fact]
    public void A_nan_metric_is_never_an_improvement()
    {
        var schedule = new PlateauSchedule(new PlateauOptions { Patience = 1, Factor = 0.5 }, 1.0);
        Assert.True(schedule.Observe(double.NaN));                      // even with no best yet it counts as bad: patience 1 drops
        Assert.Equal(0.5, schedule.LearningRate);
        var stopping = new EarlyStopping(new EarlyStoppingOptions { Patience = 2 }, [("w", new Parameter(zeros(1)))]);
        Assert.False(stopping.Observe(double.NaN, 0).Improved);
        Assert.False(stopping.RestoreBest());
    }
}
