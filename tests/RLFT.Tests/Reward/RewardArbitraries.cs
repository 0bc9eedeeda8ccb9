using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using Rlft.Reward;
using Rlft.Reward.Pipeline;
using Rlft.Reward.Ratings;

namespace Rlft.Tests.Reward;

// Inputs the properties quantify over. Each prints its contents, so a shrunk counterexample reads on one line.

/// <summary>A non-empty batch of finite scores.</summary>
public sealed record Scores(double[] Values)
{
    public override string ToString() => $"Scores [{Show.Doubles(Values)}]";
}

/// <summary>The same stream of scores, and where it is cut into batches.</summary>
public sealed record SplitStream(double[] Values, int[] Cuts)
{
    public IEnumerable<double[]> Batches()
    {
        int from = 0;
        foreach (var cut in Cuts.Append(Values.Length)) { yield return Values[from..cut]; from = cut; }
    }
    public override string ToString() => $"SplitStream [{Show.Doubles(Values)}] cut at [{string.Join(", ", Cuts)}]";
}

/// <summary>Component scores [component][sample] with one weight per component (no failures).</summary>
public sealed record ScoreMatrix(double[][] Values, double[] Weights)
{
    public int Samples => Values[0].Length;
    public override string ToString() =>
        $"ScoreMatrix weights [{Show.Doubles(Weights)}] scores {string.Join(" ", Values.Select(v => $"[{Show.Doubles(v)}]"))}";
}

/// <summary>Component scores where some entries are NaN, ±∞ or failures, with mixed policies per component.</summary>
public sealed record CorruptScores(double[][] Values, ComponentOptions[] Options)
{
    public override string ToString() => $"CorruptScores {string.Join(" ", Values.Select((v, c) =>
        $"{Options[c].Name}(w={Show.D(Options[c].Weight)},{Options[c].Normalization},{(Options[c].Missing.Action == MissingAction.Drop ? "Drop" : $"Substitute({Show.D(Options[c].Missing.Value)})")},clip=[{Show.D(Options[c].Clip.Min)},{Show.D(Options[c].Clip.Max)}])=[{Show.Doubles(v)}]"))}";
}

/// <summary>Policy and reference log-probabilities of one response, β and a score.</summary>
public sealed record Response(float[] Logp, float[] LogpRef, float Score, float Beta)
{
    public override string ToString() =>
        $"Response logp [{string.Join(", ", Logp.Select(x => Show.D(x)))}] ref [{string.Join(", ", LogpRef.Select(x => Show.D(x)))}] score {Show.D(Score)} beta {Show.D(Beta)}";
}

/// <summary>1..7 ratings with at most one per (item, rater).</summary>
public sealed record RatingSet(ScoreRating[] Ratings)
{
    public override string ToString() => $"RatingSet [{string.Join(", ", Ratings.Select(r => $"{r.ItemId}/{r.RaterId}={Show.D(r.Score)}"))}]";
}

/// <summary>Pairwise choices among items i0..iN (never an item against itself).</summary>
public sealed record Comparisons
{
    internal Comparisons(PairwiseChoice[] choices) => Choices = choices;
    internal PairwiseChoice[] Choices { get; }
    public override string ToString() => $"Comparisons [{string.Join(", ", Choices.Select(c => $"{c.RaterId}:{c.A}v{c.B}→{c.Winner}"))}]";
}

/// <summary>One word or number of an answer, spelled two ways.</summary>
public sealed record AnswerToken(string Written, string Reference, decimal? Number);

/// <summary>
/// An answer as words and numbers, rendered two ways that differ only in the normalisations exact match
/// claims. Separators have one entry more than tokens (the first and last pad the ends).
/// </summary>
public sealed record AnswerPair(AnswerToken[] Tokens, string[] WrittenSeparators, string[] ReferenceSeparators)
{
    public string Written => Join(Tokens.Select(t => t.Written), WrittenSeparators);
    public string Reference => Join(Tokens.Select(t => t.Reference), ReferenceSeparators);
    public decimal[] Numbers => Tokens.Where(t => t.Number.HasValue).Select(t => t.Number!.Value).ToArray();

    static string Join(IEnumerable<string> parts, string[] separators) =>
        separators[0] + string.Concat(parts.Select((p, i) => (i == 0 ? "" : separators[i]) + p)) + separators[^1];

    public override string ToString() => $"AnswerPair written \"{Escape(Written)}\" reference \"{Escape(Reference)}\"";
    static string Escape(string s) => s.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal);
}

static class Show
{
    public static string D(double d) => d.ToString("R", CultureInfo.InvariantCulture);
    public static string Doubles(IEnumerable<double> v) => string.Join(", ", v.Select(D));
}

public static class RewardArbitraries
{
    // Scores as reward sources produce them: mostly small decimals, some integers, a few large values.
    public static readonly Gen<double> Score = Gen.Frequency(
        (4, Gen.Choose(-100_000, 100_000).Select(i => i / 1000.0)),
        (2, Gen.Choose(-10, 10).Select(i => (double)i)),
        (1, Gen.Choose(-1_000_000, 1_000_000).Select(i => i * 1000.0)));

    static Gen<double[]> Array(Gen<double> element, int min) =>
        Gen.Sized(size => Gen.Choose(min, Math.Max(min, Math.Min(size, 40))).SelectMany(n => Gen.ArrayOf(element, n)));

    /// <summary>Shorter arrays first (drop one element), then each value towards 0 and towards an integer.</summary>
    public static IEnumerable<double[]> ShrinkDoubles(double[] a, int min)
    {
        if (a.Length > min)
            for (int i = 0; i < a.Length; i++) yield return [.. a[..i], .. a[(i + 1)..]];
        for (int i = 0; i < a.Length; i++)
            foreach (var smaller in ShrinkDouble(a[i]))
            {
                var b = (double[])a.Clone();
                b[i] = smaller;
                yield return b;
            }
    }

    static IEnumerable<double> ShrinkDouble(double x)
    {
        if (!double.IsFinite(x) || x == 0) yield break;
        yield return 0;
        if (Math.Truncate(x) != x) yield return Math.Truncate(x);
        else if (Math.Abs(x) > 1) yield return Math.Truncate(x / 2);
    }

    public static Arbitrary<Scores> Scores() =>
        Arb.From(Array(Score, 1).Select(v => new Scores(v)), s => ShrinkDoubles(s.Values, 1).Select(v => new Scores(v)));

    public static Arbitrary<SplitStream> SplitStream() => Arb.From(
        from values in Array(Score, 0)
        from cuts in Gen.ListOf(Gen.Choose(0, values.Length), 4)
        select new SplitStream(values, cuts.Order().ToArray()),
        s => ShrinkDoubles(s.Values, 0).Select(v => new SplitStream(v, s.Cuts.Select(c => Math.Min(c, v.Length)).ToArray()))
            .Concat(s.Cuts.Select((_, i) => new SplitStream(s.Values, s.Cuts.Where((_, j) => j != i).ToArray()))));

    public static Arbitrary<ScoreMatrix> ScoreMatrix() => Arb.From(
        from k in Gen.Choose(1, 4)
        from n in Gen.Choose(1, 12)
        from values in Gen.ArrayOf(Gen.ArrayOf(Score, n), k)
        from weights in Gen.ArrayOf(Gen.Choose(0, 40).Select(i => i / 4.0), k)
        select new ScoreMatrix(values, weights),
        ShrinkMatrix);

    static IEnumerable<ScoreMatrix> ShrinkMatrix(ScoreMatrix m)
    {
        int k = m.Values.Length, n = m.Samples;
        for (int c = 0; k > 1 && c < k; c++)
            yield return new ScoreMatrix([.. m.Values[..c], .. m.Values[(c + 1)..]], [.. m.Weights[..c], .. m.Weights[(c + 1)..]]);
        for (int i = 0; n > 1 && i < n; i++)
            yield return new ScoreMatrix(m.Values.Select(v => (double[])[.. v[..i], .. v[(i + 1)..]]).ToArray(), m.Weights);
        for (int c = 0; c < k; c++)
            foreach (var v in ShrinkDoubles(m.Values[c], n))
                yield return new ScoreMatrix(m.Values.Select((row, j) => j == c ? v : row).ToArray(), m.Weights);
        for (int c = 0; c < k; c++)
            if (m.Weights[c] != 1)
                yield return new ScoreMatrix(m.Values, m.Weights.Select((w, j) => j == c ? 1.0 : w).ToArray());
    }

    static readonly Gen<double> Corrupt = Gen.Frequency(
        (6, Score),
        (1, Gen.Elements(double.NaN, double.PositiveInfinity, double.NegativeInfinity, double.MaxValue, -double.MaxValue, double.Epsilon)));

    public static Arbitrary<CorruptScores> CorruptScores() => Arb.From(
        from k in Gen.Choose(1, 4)
        from n in Gen.Choose(1, 12)
        from values in Gen.ArrayOf(Gen.ArrayOf(Corrupt, n), k)
        from options in Gen.ArrayOf(ComponentGen, k)
        select new CorruptScores(values, options.Select((o, i) => o with { Name = $"c{i}" }).ToArray()),
        ShrinkCorrupt);

    /// <summary>Fewer components, fewer samples, then values towards 0 and options towards the defaults.</summary>
    static IEnumerable<CorruptScores> ShrinkCorrupt(CorruptScores s)
    {
        int k = s.Values.Length, n = s.Values[0].Length;
        for (int c = 0; k > 1 && c < k; c++)
            yield return new CorruptScores([.. s.Values[..c], .. s.Values[(c + 1)..]], [.. s.Options[..c], .. s.Options[(c + 1)..]]);
        for (int i = 0; n > 1 && i < n; i++)
            yield return s with { Values = s.Values.Select(v => (double[])[.. v[..i], .. v[(i + 1)..]]).ToArray() };
        for (int c = 0; c < k; c++)
            for (int i = 0; i < n; i++)
                if (s.Values[c][i] != 0 && double.IsFinite(s.Values[c][i]) && Math.Abs(s.Values[c][i]) < 1e300)
                    yield return s with { Values = s.Values.Select((v, j) => j == c ? v.Select((x, m) => m == i ? 0 : x).ToArray() : v).ToArray() };
        for (int c = 0; c < k; c++)
        {
            var o = s.Options[c];
            if (o.Normalization != Normalization.None) yield return Replace(s, c, o with { Normalization = Normalization.None });
            if (o.Clip != ClipRange.Unbounded) yield return Replace(s, c, o with { Clip = ClipRange.Unbounded });
            if (o.Weight != 1 && o.Weight < 1e300) yield return Replace(s, c, o with { Weight = 1 });
        }
    }

    static CorruptScores Replace(CorruptScores s, int c, ComponentOptions o) => s with { Options = s.Options.Select((x, j) => j == c ? o : x).ToArray() };

    static readonly Gen<ComponentOptions> ComponentGen =
        from weight in Gen.Frequency((3, Gen.Choose(0, 20).Select(i => i / 4.0)), (1, Gen.Constant(1e300)))
        from norm in Gen.Elements(Normalization.None, Normalization.Running, Normalization.Batch)
        from clip in Gen.Elements(ClipRange.Unbounded, new ClipRange(-5, 5), new ClipRange(0, 1), new ClipRange(double.NegativeInfinity, 10))
        from missing in Gen.Elements(MissingPolicy.Drop, MissingPolicy.Substitute(0), MissingPolicy.Substitute(-1), MissingPolicy.Substitute(1e308))
        select new ComponentOptions("c", weight) { Normalization = norm, Clip = clip, Missing = missing };

    public static Arbitrary<Response> Response() => Arb.From(
        from t in Gen.Choose(1, 24)
        from logp in Gen.ArrayOf(LogProb, t)
        from logpRef in Gen.ArrayOf(LogProb, t)
        from score in Gen.Choose(-1000, 1000).Select(i => i / 100f)
        from beta in Gen.Elements(0f, 0.001f, 0.01f, 0.05f, 0.1f, 1f)
        select new Response(logp, logpRef, score, beta),
        r => r.Logp.Length > 1
            ? Enumerable.Range(0, r.Logp.Length).Select(i => r with { Logp = [.. r.Logp[..i], .. r.Logp[(i + 1)..]], LogpRef = [.. r.LogpRef[..i], .. r.LogpRef[(i + 1)..]] })
            : []);

    static readonly Gen<float> LogProb = Gen.Frequency(
        (5, Gen.Choose(-5000, 0).Select(i => i / 1000f)),
        (1, Gen.Choose(-30, 0).Select(i => (float)i)));

    public static Arbitrary<RatingSet> RatingSet() => Arb.From(
        from items in Gen.Choose(1, 6)
        from raters in Gen.Choose(1, 5)
        from cells in Gen.SubListOf(Enumerable.Range(0, items * raters).ToArray())
        from scores in Gen.ArrayOf(Gen.Choose(1, 7), cells.Count)
        select new RatingSet(cells.Select((cell, i) => new ScoreRating($"i{cell / raters}", $"r{cell % raters}", scores[i])).ToArray()),
        s => Enumerable.Range(0, s.Ratings.Length).Select(i => new RatingSet([.. s.Ratings[..i], .. s.Ratings[(i + 1)..]])));

    public static Arbitrary<Comparisons> Comparisons() => Arb.From(
        from items in Gen.Choose(2, 5)
        from count in Gen.Choose(0, 20)
        from choices in Gen.ArrayOf(Choice(items), count)
        select new Comparisons(choices),
        s => Enumerable.Range(0, s.Choices.Length).Select(i => new Comparisons([.. s.Choices[..i], .. s.Choices[(i + 1)..]])));

    static Gen<PairwiseChoice> Choice(int items) =>
        from a in Gen.Choose(0, items - 1)
        from offset in Gen.Choose(1, items - 1)
        from rater in Gen.Choose(0, 3)
        from firstWins in Gen.Elements(true, false)
        let b = (a + offset) % items
        select new PairwiseChoice($"r{rater}", $"i{a}", $"i{b}", firstWins ? $"i{a}" : $"i{b}");

    public static Arbitrary<AnswerPair> AnswerPair() => Arb.From(
        from n in Gen.Choose(1, 6)
        from tokens in Gen.ArrayOf(Token, n)
        from written in Gen.ArrayOf(Separator, n + 1)
        from reference in Gen.ArrayOf(Separator, n + 1)
        from padWritten in Gen.Elements(true, false)
        from padReference in Gen.Elements(true, false)
        select new AnswerPair(tokens, Pad(written, padWritten), Pad(reference, padReference)),
        ShrinkAnswer);

    static string[] Pad(string[] separators, bool pad) => pad ? separators : ["", .. separators[1..^1], ""];

    static readonly Gen<string> Separator = Gen.Elements(" ", "  ", "\t", "\n ", " \r\n");

    // A token is a word (random case) or a number (0–2 decimals, spelled in any of its forms).
    static readonly Gen<AnswerToken> Token = Gen.OneOf(
        from w in Gen.Choose(1, 6).SelectMany(n => Gen.ArrayOf(Gen.Elements("abcdefghxyz".ToCharArray()), n)).Select(cs => new string(cs))
        from a in RenderWord(w)
        from b in RenderWord(w)
        select new AnswerToken(a, b, null),
        from m in Gen.Choose(-2_000_000, 2_000_000)
        from scale in Gen.Choose(0, 2)
        let d = m / (decimal)Math.Pow(10, scale)
        from a in RenderNumber(d)
        from b in RenderNumber(d)
        select new AnswerToken(a, b, d));

    /// <summary>Fewer tokens, then single spaces and no padding, then plain spellings on one side.</summary>
    static IEnumerable<AnswerPair> ShrinkAnswer(AnswerPair p)
    {
        int n = p.Tokens.Length;
        for (int i = 0; n > 1 && i < n; i++)
            yield return new AnswerPair([.. p.Tokens[..i], .. p.Tokens[(i + 1)..]],
                [.. p.WrittenSeparators[..(i + 1)], .. p.WrittenSeparators[(i + 2)..]], [.. p.ReferenceSeparators[..(i + 1)], .. p.ReferenceSeparators[(i + 2)..]]);
        string[] plain = ["", .. Enumerable.Repeat(" ", n - 1), ""];
        if (!p.WrittenSeparators.SequenceEqual(plain)) yield return p with { WrittenSeparators = plain };
        if (!p.ReferenceSeparators.SequenceEqual(plain)) yield return p with { ReferenceSeparators = plain };
        for (int i = 0; i < n; i++)
        {
            var t = p.Tokens[i];
            string simple = t.Number is { } d ? d.ToString("0.##", CultureInfo.InvariantCulture) : t.Written.ToLowerInvariant();
            if (t.Written != simple) yield return p with { Tokens = p.Tokens.Select((x, j) => j == i ? x with { Written = simple } : x).ToArray() };
            if (t.Reference != simple) yield return p with { Tokens = p.Tokens.Select((x, j) => j == i ? x with { Reference = simple } : x).ToArray() };
        }
    }

    static Gen<string> RenderWord(string w) =>
        Gen.ArrayOf(Gen.Elements(true, false), w.Length).Select(upper => new string(w.Select((c, i) => upper[i] ? char.ToUpperInvariant(c) : c).ToArray()));

    /// <summary>Equal values spelled differently: plain, trailing zeros, leading '+', thousands separators, "-0".</summary>
    public static Gen<string> RenderNumber(decimal d) => Gen.Elements(NumberForms(d));

    public static string[] NumberForms(decimal d)
    {
        var inv = CultureInfo.InvariantCulture;
        string plain = d.ToString("0.##", inv);
        var forms = new List<string> { plain, d.ToString("0.00##", inv), d.ToString("#,0.##", inv), d.ToString("#,0.0###", inv) };
        if (d > 0) forms.AddRange(["+" + plain, "+" + d.ToString("#,0.##", inv)]);
        if (d == 0) forms.AddRange(["-0", "+0", "-0.0"]);
        return forms.Distinct().ToArray();
    }
}
