using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Rlft.Reward;
using Rlft.Reward.Pipeline;
using Rlft.Reward.Ratings;
using Rlft.Reward.Sources;

namespace Rlft.Tests.Reward;

/// <summary>A reward spec and its HOCON text, written field by field so properties can break one field.</summary>
public sealed record GeneratedSpec(RewardSpec Spec)
{
    public List<List<(string Key, string Value)>> Fields() => Spec.Components.Select(SpecHocon.Fields).ToList();
    public string Hocon() => SpecHocon.Render(Fields(), Spec.TotalClip);
    public override string ToString() => Hocon().Replace("\n", " ", StringComparison.Ordinal);
}

public static class SpecHocon
{
    static string N(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    static string Q(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s) sb.Append(c switch { '"' => "\\\"", '\\' => "\\\\", '\n' => "\\n", _ => c.ToString() });
        return sb.Append('"').ToString();
    }

    static string List(IEnumerable<string> items) => "[" + string.Join(", ", items.Select(Q)) + "]";

    static string Clip(ClipRange c) =>
        "{ " + string.Join(", ", new[] { double.IsFinite(c.Min) ? $"min = {N(c.Min)}" : null, double.IsFinite(c.Max) ? $"max = {N(c.Max)}" : null }.OfType<string>()) + " }";

    public static string Render(IEnumerable<List<(string Key, string Value)>> components, ClipRange total)
    {
        var sb = new StringBuilder("rewards {\n");
        if (total != ClipRange.Unbounded) sb.Append($"  clip {Clip(total)}\n");
        sb.Append("  components = [\n");
        foreach (var c in components) sb.Append("    { ").Append(string.Join(", ", c.Select(f => $"{f.Key} = {f.Value}"))).Append(" }\n");
        return sb.Append("  ]\n}\n").ToString();
    }

    /// <summary>The keys a user would write for this component; defaults are left out, as users leave them out.</summary>
    public static List<(string, string)> Fields(RewardComponentSpec c)
    {
        var o = c.Options;
        var f = new List<(string, string)> { ("name", Q(o.Name)), ("source", c.Source.Kind) };
        if (o.Weight != 1) f.Add(("weight", N(o.Weight)));
        if (o.Normalization != Normalization.None) f.Add(("normalize", o.Normalization.ToString().ToLowerInvariant()));
        if (o.Clip != ClipRange.Unbounded) f.Add(("clip", Clip(o.Clip)));
        if (o.Missing.Action == MissingAction.Substitute) f.AddRange([("on-missing", "substitute"), ("substitute", N(o.Missing.Value))]);
        switch (c.Source)
        {
            case ExactMatchSpec s:
                if (s.Extract is not null) f.Add(("extract", Q(s.Extract)));
                if (s.CaseSensitive) f.Add(("case-sensitive", "true"));
                break;
            case NumericMatchSpec s:
                if (s.Extract is not null) f.Add(("extract", Q(s.Extract)));
                f.AddRange([("abs-tolerance", N(s.AbsTolerance)), ("rel-tolerance", N(s.RelTolerance))]);
                break;
            case RegexSpec s: f.AddRange([("pattern", Q(s.Pattern)), ("match-score", N(s.MatchScore)), ("miss-score", N(s.MissScore))]); break;
            case LengthSpec s: f.AddRange([("target", s.Target.ToString(CultureInfo.InvariantCulture)), ("unit", s.Unit == LengthUnit.Words ? "words" : "characters")]); break;
            case JsonSpec s: f.Add(("required-keys", List(s.RequiredKeys))); break;
            case SectionsSpec s: f.AddRange([("sections", List(s.Headings)), ("in-order", s.InOrder ? "true" : "false")]); break;
            case RepetitionSpec s: f.Add(("n", s.N.ToString(CultureInfo.InvariantCulture))); break;
            case FunctionSpec s: f.Add(("function", Q(s.Function))); break;
            case HttpSpec s:
                f.AddRange([("url", Q(s.Options.Url.ToString())), ("timeout-seconds", N(s.Options.Timeout.TotalSeconds)), ("retries", s.Options.MaxRetries.ToString(CultureInfo.InvariantCulture)),
                    ("backoff-seconds", N(s.Options.Backoff.TotalSeconds)), ("max-batch", s.Options.MaxBatch.ToString(CultureInfo.InvariantCulture))]);
                break;
            case RewardModelSpec s: f.AddRange([("model", Q(s.Model)), ("max-batch", s.MaxBatch.ToString(CultureInfo.InvariantCulture))]); break;
            case HumanSpec s:
                f.AddRange([("min-raters", s.Options.MinRaters.ToString(CultureInfo.InvariantCulture)), ("timeout-seconds", N(s.Options.Timeout.TotalSeconds)),
                    ("aggregate", s.Options.Aggregate.ToString().ToLowerInvariant())]);
                break;
        }
        return f;
    }

    public static bool SameSpec(RewardSpec a, RewardSpec b) =>
        a.TotalClip == b.TotalClip && a.Components.Count == b.Components.Count
        && a.Components.Zip(b.Components).All(p => p.Item1.Options == p.Item2.Options && SameSource(p.Item1.Source, p.Item2.Source));

    static bool SameSource(SourceSpec a, SourceSpec b) => (a, b) switch
    {
        (JsonSpec x, JsonSpec y) => x.RequiredKeys.SequenceEqual(y.RequiredKeys),
        (SectionsSpec x, SectionsSpec y) => x.Headings.SequenceEqual(y.Headings) && x.InOrder == y.InOrder,
        _ => a.Equals(b),
    };
}

public static class SpecArbitraries
{
    static Gen<double> Quarter(int lo, int hi) => Gen.Choose(lo * 4, hi * 4).Select(i => i / 4.0);

    static readonly Gen<SourceSpec> Source = Gen.OneOf<SourceSpec>(
        from extract in Gen.Elements<string?>(null, @"Answer:\s*(.*)")
        from cs in Gen.Elements(true, false)
        select (SourceSpec)new ExactMatchSpec(extract, cs),
        from extract in Gen.Elements<string?>(null, @"=\s*(\S+)")
        from abs in Gen.Elements(0.0, 0.01, 0.5)
        from rel in Gen.Elements(0.0, 0.25)
        select (SourceSpec)new NumericMatchSpec(extract, abs, rel),
        from pattern in Gen.Elements(@"\d+", "(?i)hello", "^A", @"[a-z]+\s", "say \"hi\"")
        from hit in Quarter(-5, 5)
        from miss in Quarter(-5, 5)
        select (SourceSpec)new RegexSpec(pattern, hit, miss),
        from target in Gen.Choose(1, 200)
        from unit in Gen.Elements(LengthUnit.Words, LengthUnit.Characters)
        select (SourceSpec)new LengthSpec(target, unit),
        Gen.SubListOf("answer", "reason", "score").Select(k => (SourceSpec)new JsonSpec(k.ToList())),
        from headings in Gen.NonEmptyListOf(Gen.Elements("Reasoning:", "Answer:", "## Summary"))
        from inOrder in Gen.Elements(true, false)
        select (SourceSpec)new SectionsSpec(headings.ToList(), inOrder),
        Gen.Choose(1, 6).Select(n => (SourceSpec)new RepetitionSpec(n)),
        Gen.Elements("word-count", "char-count", "contains-reference").Select(n => (SourceSpec)new FunctionSpec(n)),
        from timeout in Gen.Choose(1, 30)
        from retries in Gen.Choose(0, 5)
        from backoff in Gen.Elements(0.0, 0.5, 2.0)
        from maxBatch in Gen.Choose(1, 128)
        select (SourceSpec)new HttpSpec(new HttpScorerOptions(new Uri("http://127.0.0.1:8123/score"), TimeSpan.FromSeconds(timeout), retries, TimeSpan.FromSeconds(backoff), maxBatch)),
        Gen.Choose(1, 64).Select(b => (SourceSpec)new RewardModelSpec("models/rm", b)),
        from minRaters in Gen.Choose(1, 5)
        from timeout in Gen.Choose(1, 600)
        from agg in Gen.Elements(ScoreAggregate.Mean, ScoreAggregate.Median)
        select (SourceSpec)new HumanSpec(new HumanRatingOptions(minRaters, TimeSpan.FromSeconds(timeout), agg)));

    static readonly Gen<ClipRange> Clip =
        from lo in Gen.Choose(-20, 0)
        from width in Gen.Choose(0, 20)
        from kind in Gen.Choose(0, 3)
        select kind switch
        {
            0 => ClipRange.Unbounded,
            1 => new ClipRange(lo / 2.0, double.PositiveInfinity),
            2 => new ClipRange(double.NegativeInfinity, (lo + width) / 2.0),
            _ => new ClipRange(lo / 2.0, (lo + width) / 2.0),
        };

    static readonly Gen<RewardComponentSpec> Component =
        from source in Source
        from weight in Gen.Frequency((1, Gen.Constant(1.0)), (3, Quarter(0, 10)))
        from norm in Gen.Elements(Normalization.None, Normalization.Running, Normalization.Batch)
        from clip in Clip
        from substitute in Gen.OneOf(Gen.Constant<double?>(null), Quarter(-5, 5).Select(v => (double?)v))
        select new RewardComponentSpec(
            new ComponentOptions(source.Kind, weight)
            {
                Normalization = norm,
                Clip = clip,
                Missing = substitute is { } v ? MissingPolicy.Substitute(v) : MissingPolicy.Drop,
            },
            source);

    public static Arbitrary<GeneratedSpec> GeneratedSpec() => Arb.From(
        from components in Gen.Choose(1, 5).SelectMany(n => Gen.ArrayOf(Component, n))
        from total in Clip
        select new GeneratedSpec(new RewardSpec(
            components.Select((c, i) => c with { Options = c.Options with { Name = $"{c.Source.Kind}-{i}" } }).ToList(), total)),
        s => Enumerable.Range(0, s.Spec.Components.Count).Where(_ => s.Spec.Components.Count > 1)
            .Select(i => new GeneratedSpec(s.Spec with { Components = s.Spec.Components.Where((_, j) => j != i).ToList() })));
}
