using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Benchmarks;

/// <summary>
/// <c>rlft bench --compare OLD.jsonl</c>: for each line (by <c>name</c>) in both runs, every ratio field old → new and
/// its change. Ratios are what survives a change of machine or load (each is measured against a reference in the
/// same process), so they are what two runs compare. A ratio field is <c>ratio</c> (every line's headline, see
/// <see cref="IBenchmark"/>) or a numeric field whose name says it is one (ratio, fraction, speedup, saving,
/// utilisation, _over_, time_cost), so files written before the headline existed compare too.
/// </summary>
internal static class BenchComparison
{
    static readonly string[] RatioWords = ["ratio", "fraction", "speedup", "saving", "utilisation", "_over_", "time_cost"];

    public static bool IsRatio(string key) => RatioWords.Any(w => key.Contains(w, StringComparison.Ordinal));

    /// <summary>The JSON objects of a bench output, by name (the last line of a name wins); other lines are skipped.</summary>
    public static Dictionary<string, JsonObject> Read(IEnumerable<string> lines)
    {
        var byName = new Dictionary<string, JsonObject>();
        foreach (var line in lines)
        {
            var text = line.Trim();
            if (!text.StartsWith('{')) continue;
            JsonObject? o;
            try { o = JsonNode.Parse(text) as JsonObject; }
            catch (JsonException) { continue; }
            if (o?["name"] is JsonValue v && v.TryGetValue<string>(out var name)) byName[name] = o;
        }
        return byName;
    }

    /// <summary>Human-readable rows: "name  field  old → new  change", then the names found in only one run.</summary>
    public static IEnumerable<string> Describe(IReadOnlyDictionary<string, JsonObject> old, IReadOnlyDictionary<string, JsonObject> current)
    {
        var rows = new List<(string Name, string Field, double Old, double New)>();
        foreach (var (name, line) in current)
        {
            if (!old.TryGetValue(name, out var before)) continue;
            foreach (var (field, value) in line)
                if (IsRatio(field) && Number(value) is double now && Number(before[field]) is double then)
                    rows.Add((name, field, then, now));
        }
        int nameWidth = rows.Select(r => r.Name.Length).DefaultIfEmpty(4).Max(), fieldWidth = rows.Select(r => r.Field.Length).DefaultIfEmpty(5).Max();
        yield return $"{"name".PadRight(nameWidth)}  {"ratio".PadRight(fieldWidth)}  {"old",9}  {"new",9}  change";
        foreach (var (name, field, then, now) in rows)
            yield return $"{name.PadRight(nameWidth)}  {field.PadRight(fieldWidth)}  {F(then),9}  {F(now),9}  {Change(then, now)}";
        foreach (var name in old.Keys.Except(current.Keys)) yield return $"{name}: only in the old run";
        foreach (var name in current.Keys.Except(old.Keys)) yield return $"{name}: only in the new run";
    }

    /// <summary>new / old − 1 as a signed percentage; "n/a" when the old ratio is 0.</summary>
    public static string Change(double then, double now) =>
        then == 0 ? (now == 0 ? "+0.0%" : "n/a") : ((now / then - 1) * 100).ToString("+0.0;-0.0;+0.0", CultureInfo.InvariantCulture) + "%";

    static string F(double x) => x.ToString("0.####", CultureInfo.InvariantCulture);

    static double? Number(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : null;
}
