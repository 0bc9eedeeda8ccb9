using System.Text.Json;
using System.Text.RegularExpressions;

namespace Rlft.Reward.Sources;

/// <summary>
/// A source computed sample by sample from the text alone (no batch statistics, so permuting the
/// batch permutes the scores). An exception from the rule becomes that sample's failure.
/// </summary>
public sealed class RuleSource(string name, Func<RewardSample, SampleScore> rule) : IRewardSource
{
    public string Name { get; } = name;

    public Task<SourceScores> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var scores = new SampleScore[batch.Count];
        for (int i = 0; i < batch.Count; i++)
        {
            try { scores[i] = rule(batch[i]); }
            catch (Exception e) when (e is not OperationCanceledException) { scores[i] = SampleScore.Fail(e.Message); }
        }
        return Task.FromResult(new SourceScores(Name, scores));
    }
}

/// <summary>
/// A registered asynchronous reward function as a source: awaited for one sample at a time, in batch order; an exception
/// (other than cancellation) fails that sample, as a rule's does.
/// </summary>
public sealed class AsyncFunctionSource(string name, Func<RewardSample, CancellationToken, Task<double>> function) : IRewardSource
{
    public string Name { get; } = name;

    public async Task<SourceScores> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct)
    {
        var scores = new SampleScore[batch.Count];
        for (int i = 0; i < batch.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            try { scores[i] = SampleScore.Ok(await function(batch[i], ct)); }
            catch (Exception e) when (e is not OperationCanceledException) { scores[i] = SampleScore.Fail(e.Message); }
        }
        return new SourceScores(Name, scores);
    }
}

public enum LengthUnit { Words, Characters }

/// <summary>Verifiable and format rewards. Each returns a <see cref="RuleSource"/>.</summary>
public static class RuleRewards
{
    static readonly TimeSpan RegexBudget = TimeSpan.FromMilliseconds(250);
    const string NoReference = "no reference answer";

    /// <summary>
    /// 1 when the (extracted) completion equals the reference after <see cref="TextNormalization.Normalize"/>, else 0.
    /// <paramref name="extract"/>: a regex whose first group (or whole match; last match wins) is the answer.
    /// </summary>
    public static RuleSource ExactMatch(string name = "exact-match", string? extract = null, bool caseSensitive = false)
    {
        var extractor = extract is null ? null : Compile(extract);
        return new RuleSource(name, s =>
        {
            if (s.Reference is null) return SampleScore.Fail(NoReference);
            string? answer = extractor is null ? s.Completion : LastMatch(extractor, s.Completion);
            if (answer is null) return SampleScore.Ok(0);
            bool same = TextNormalization.Normalize(answer, caseSensitive) == TextNormalization.Normalize(s.Reference, caseSensitive);
            return SampleScore.Ok(same ? 1 : 0);
        });
    }

    /// <summary>
    /// 1 when the last number in the completion (or in the <paramref name="extract"/> match) equals the
    /// reference number within <c>absTolerance + relTolerance·|reference|</c>, else 0 (also 0 when the completion has no number).
    /// </summary>
    public static RuleSource NumericMatch(string name = "numeric-match", string? extract = null, double absTolerance = 1e-9, double relTolerance = 1e-9)
    {
        var extractor = extract is null ? null : Compile(extract);
        return new RuleSource(name, s =>
        {
            if (s.Reference is null) return SampleScore.Fail(NoReference);
            if (!TextNormalization.TryParseNumber(s.Reference, out var expected))
                return SampleScore.Fail($"reference '{Truncate(s.Reference)}' is not a number");
            string? region = extractor is null ? s.Completion : LastMatch(extractor, s.Completion);
            var numbers = region is null ? [] : TextNormalization.Numbers(region);
            if (numbers.Count == 0) return SampleScore.Ok(0);
            double got = (double)numbers[^1], want = (double)expected;
            return SampleScore.Ok(Math.Abs(got - want) <= absTolerance + relTolerance * Math.Abs(want) ? 1 : 0);
        });
    }

    /// <summary><paramref name="matchScore"/> when the pattern occurs in the completion, else <paramref name="missScore"/>.</summary>
    public static RuleSource Regex(string pattern, string name = "regex", double matchScore = 1, double missScore = 0)
    {
        var regex = Compile(pattern);
        return new RuleSource(name, s => SampleScore.Ok(regex.IsMatch(s.Completion) ? matchScore : missScore));
    }

    /// <summary>Target-length shaping: <c>max(0, 1 − |len − target| / target)</c>, 1 at the target, 0 at twice it or empty.</summary>
    public static RuleSource TargetLength(int target, LengthUnit unit = LengthUnit.Words, string name = "length")
    {
        if (target <= 0) throw new ArgumentOutOfRangeException(nameof(target), target, "target length must be positive");
        return new RuleSource(name, s =>
        {
            int len = unit == LengthUnit.Words ? TextNormalization.Words(s.Completion).Count : s.Completion.Length;
            return SampleScore.Ok(Math.Max(0, 1 - Math.Abs(len - target) / (double)target));
        });
    }

    /// <summary>
    /// 0 when the completion (optionally inside a ``` fence) is not valid JSON; otherwise the fraction of
    /// <paramref name="requiredKeys"/> present at the top level of the object (1 when none are required).
    /// </summary>
    public static RuleSource ValidJson(IReadOnlyList<string>? requiredKeys = null, string name = "json")
    {
        var keys = requiredKeys ?? [];
        return new RuleSource(name, s =>
        {
            string text = StripFence(s.Completion);
            try
            {
                using var doc = JsonDocument.Parse(text);
                if (keys.Count == 0) return SampleScore.Ok(1);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) return SampleScore.Ok(0);
                int present = keys.Count(k => doc.RootElement.TryGetProperty(k, out _));
                return SampleScore.Ok(present / (double)keys.Count);
            }
            catch (JsonException) { return SampleScore.Ok(0); }
        });
    }

    /// <summary>Fraction of the headings present (case-insensitive); with <paramref name="inOrder"/>, each must follow the previous one found.</summary>
    public static RuleSource Sections(IReadOnlyList<string> headings, bool inOrder = true, string name = "sections")
    {
        if (headings.Count == 0) throw new ArgumentException("at least one section heading is required", nameof(headings));
        return new RuleSource(name, s =>
        {
            int found = 0, from = 0;
            foreach (var h in headings)
            {
                int at = s.Completion.IndexOf(h, inOrder ? from : 0, StringComparison.OrdinalIgnoreCase);
                if (at < 0) continue;
                found++;
                if (inOrder) from = at + h.Length;
            }
            return SampleScore.Ok(found / (double)headings.Count);
        });
    }

    /// <summary>
    /// <c>−(1 − distinct n-grams / n-grams)</c> over lower-cased words: 0 without repeats, towards −1 for a
    /// completion that loops; 0 when there are fewer than <paramref name="n"/> words.
    /// </summary>
    public static RuleSource RepetitionPenalty(int n = 3, string name = "repetition")
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "n-gram size must be positive");
        return new RuleSource(name, s =>
        {
            var words = TextNormalization.Words(s.Completion);
            int total = words.Count - n + 1;
            if (total <= 0) return SampleScore.Ok(0);
            var distinct = new HashSet<string>();
            for (int i = 0; i < total; i++) distinct.Add(string.Join('\u0001', words.Skip(i).Take(n)));
            return SampleScore.Ok(0 - (1 - distinct.Count / (double)total)); // 0 − x, not −x: no "-0" in reports
        });
    }

    /// <summary>A user function as a source; NaN/∞ results and exceptions become per-sample failures.</summary>
    public static RuleSource Function(string name, Func<RewardSample, double> function) =>
        new(name, s => SampleScore.Ok(function(s)));

    static Regex Compile(string pattern)
    {
        try { return new Regex(pattern, RegexOptions.CultureInvariant, RegexBudget); }
        catch (ArgumentException e) { throw new ArgumentException($"invalid regular expression '{pattern}': {e.Message}", nameof(pattern), e); }
    }

    static string? LastMatch(Regex regex, string text)
    {
        Match? last = null;
        for (var m = regex.Match(text); m.Success; m = m.NextMatch()) last = m;
        if (last is null) return null;
        return last.Groups.Count > 1 && last.Groups[1].Success ? last.Groups[1].Value : last.Value;
    }

    static string StripFence(string text)
    {
        string t = text.Trim();
        if (!t.StartsWith("```", StringComparison.Ordinal)) return t;
        int firstNewline = t.IndexOf('\n');
        int close = t.LastIndexOf("```", StringComparison.Ordinal);
        return firstNewline > 0 && close > firstNewline ? t[(firstNewline + 1)..close] : t;
    }

    static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
