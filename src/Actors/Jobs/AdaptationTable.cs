using System.Globalization;

namespace Rlft.Actors.Jobs;

/// <summary>
/// The zero-/few-shot table of a job's adapt stages, one row per stage (per starting point: the weights the stage began
/// with): the held-out loss and reward before adaptation (zero-shot) and after its k steps, read from the summary keys
/// <c>STAGE/before/eval/{loss,reward}</c>, <c>STAGE/after/eval/{loss,reward}</c> and <c>STAGE/after/adapt/loss@K</c>
/// that an adapt stage records. The job summary carries it as <c>adaptation</c>; <c>rlft run</c> prints it.
/// </summary>
internal static class AdaptationTable
{
    internal sealed record Row(string Stage, int Steps, double ZeroShotLoss, double ZeroShotReward, double AdaptedLoss, double AdaptedReward);

    const string CurveMarker = "/after/adapt/loss@";

    /// <summary>
    /// Each adapt stage's curve (<c>STAGE/after/adapt/loss@K</c>): its held-out loss after K steps, K ascending, stages in
    /// the order they appear in <paramref name="summary"/>.
    /// </summary>
    public static List<(string Stage, List<(int Step, double Loss)> Points)> Curves(IEnumerable<KeyValuePair<string, double>> summary)
    {
        var curves = new List<(string Stage, List<(int Step, double Loss)> Points)>();
        foreach (var (key, value) in summary)
        {
            int at = key.IndexOf(CurveMarker, StringComparison.Ordinal);
            if (at <= 0 || !int.TryParse(key.AsSpan(at + CurveMarker.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int k)) continue;
            string stage = key[..at];
            int index = curves.FindIndex(c => c.Stage == stage);
            if (index < 0) curves.Add((stage, []));
            curves[index < 0 ? ^1 : index].Points.Add((k, value));
        }
        foreach (var (_, points) in curves) points.Sort();
        return curves;
    }

    /// <summary>Rows in the order the stages appear in <paramref name="summary"/>; empty when the job has no adapt stage.</summary>
    public static IReadOnlyList<Row> From(IEnumerable<KeyValuePair<string, double>> summary)
    {
        var values = summary.ToDictionary(kv => kv.Key, kv => kv.Value);
        double Get(string key) => values.TryGetValue(key, out var v) ? v : double.NaN;
        return Curves(values).Select(c => new Row(c.Stage, c.Points[^1].Step,
            Get($"{c.Stage}/before/eval/loss"), Get($"{c.Stage}/before/eval/reward"),
            Get($"{c.Stage}/after/eval/loss"), Get($"{c.Stage}/after/eval/reward"))).ToList();
    }

    /// <summary><see cref="From(IEnumerable{KeyValuePair{string, double}})"/> over a written summary (numeric values only).</summary>
    public static IReadOnlyList<Row> From(IReadOnlyDictionary<string, object> summary) => From(Numeric(summary));

    /// <summary>The numeric entries of a written summary.</summary>
    public static IEnumerable<KeyValuePair<string, double>> Numeric(IReadOnlyDictionary<string, object> summary) =>
        summary.Where(kv => kv.Value is double).Select(kv => KeyValuePair.Create(kv.Key, (double)kv.Value));

    /// <summary>The rows as summary.json carries them.</summary>
    public static List<Dictionary<string, object>> ToJson(IReadOnlyList<Row> rows) =>
        rows.Select(r => new Dictionary<string, object>
        {
            ["stage"] = r.Stage,
            ["steps"] = r.Steps,
            ["zero_shot"] = new Dictionary<string, double> { ["loss"] = r.ZeroShotLoss, ["reward"] = r.ZeroShotReward },
            ["adapted"] = new Dictionary<string, double> { ["loss"] = r.AdaptedLoss, ["reward"] = r.AdaptedReward },
        }).ToList();

    /// <summary>A fixed-width text table, one line per row after a header; nothing when there are no rows.</summary>
    public static IEnumerable<string> Lines(IReadOnlyList<Row> rows)
    {
        if (rows.Count == 0) yield break;
        int width = Math.Max("adapt stage".Length, rows.Max(r => r.Stage.Length));
        yield return $"{"adapt stage".PadRight(width)}  steps  zero-shot loss  reward   after k steps loss  reward";
        foreach (var r in rows)
            yield return $"{r.Stage.PadRight(width)}  {r.Steps,5}  {F(r.ZeroShotLoss),14}  {F(r.ZeroShotReward),6}   {F(r.AdaptedLoss),18}  {F(r.AdaptedReward),6}";
    }

    static string F(double v) => double.IsNaN(v) ? "—" : v.ToString("0.000", CultureInfo.InvariantCulture);
}
