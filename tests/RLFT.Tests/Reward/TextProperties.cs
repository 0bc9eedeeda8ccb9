using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Reward;
using Rlft.Reward.Sources;

namespace Rlft.Tests.Reward;

/// <summary>Answer matching is invariant under exactly the normalisations it claims, and still tells answers apart.</summary>
[Properties(Arbitrary = [typeof(RewardArbitraries)], MaxTest = 300)]
public class TextProperties
{
    static async Task<double?> Score(IRewardSource source, string completion, string reference) =>
        (await source.ScoreAsync([new RewardSample("q", completion, reference)], TestContext.Current.CancellationToken)).Scores[0].Value;

    [Property]
    public async Task<bool> Exact_match_is_invariant_under_whitespace_case_and_number_format(AnswerPair a) =>
        await Score(RuleRewards.ExactMatch(), a.Written, a.Reference) == 1;

    [Property]
    public async Task<bool> Exact_match_tells_a_different_number_apart(AnswerPair a)
    {
        if (a.Numbers.Length == 0) return true;
        decimal changed = a.Numbers[^1] + 1;
        string reference = a.Reference + " " + TextNormalization.Canonical(a.Numbers[^1]);
        string written = a.Written + " " + TextNormalization.Canonical(changed);
        return await Score(RuleRewards.ExactMatch(), written, reference) == 0;
    }

    [Property]
    public async Task<bool> Numeric_match_accepts_every_spelling_of_the_answer_and_only_it(int value, byte scale)
    {
        // Scaled so thousands separators occur: FsCheck's ints stay near the size (≤ 100).
        decimal answer = value * 1013m / (decimal)Math.Pow(10, scale % 3);
        var spellings = RewardArbitraries.NumberForms(answer);
        var source = RuleRewards.NumericMatch();
        foreach (var written in spellings)
            foreach (var reference in spellings)
            {
                if (await Score(source, $"So the total is {written}.", reference) != 1) return false;
                if (await Score(source, $"So the total is {TextNormalization.Canonical(answer + 0.5m)}.", reference) != 0) return false;
            }
        return true;
    }
}
