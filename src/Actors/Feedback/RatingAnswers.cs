namespace Rlft.Actors.Feedback;

/// <summary>
/// Whether an answer fits its item: a pair takes a choice of one of its two completions (with a strength when the
/// item asks for one) or one of the item's verdicts; a score item a 1..7 score per completion, or per completion
/// and criterion when it names criteria; a rationale as the item's policy says. Messages name the field.
/// </summary>
internal static class RatingAnswers
{
    public static string? Problem(FeedbackItem item, SubmitRating cmd)
    {
        if (cmd.Rationale is { } why)
        {
            if (item.Rationale == RationalePolicy.Off) return "rationale: this task takes no rationale";
            if (why.Length > ItemParts.MaxRationaleLength) return $"rationale: longer than {ItemParts.MaxRationaleLength} characters";
        }
        if (item.Rationale == RationalePolicy.Required && string.IsNullOrWhiteSpace(cmd.Rationale))
            return "rationale: this task needs a rationale (a sentence on why)";
        return item.Kind == FeedbackKind.Compare ? PairProblem(item, cmd) : ScoreProblem(item, cmd);
    }

    static string? PairProblem(FeedbackItem item, SubmitRating cmd)
    {
        var ids = item.Completions.Select(c => c.Id).ToList();
        if (cmd.Scores is not null || cmd.Criteria is not null)
            return "choice: a compare task needs \"choice\" (a completion id) or \"verdict\", not \"scores\"";
        if (cmd.Verdict is { } verdict)
        {
            if (cmd.Choice is not null) return "verdict: give either \"choice\" or \"verdict\", not both";
            if (cmd.Strength is not null) return "strength: only a choice takes a strength";
            if (!item.Verdicts.Contains(verdict))
                return item.Verdicts.Count == 0 ? $"verdict: this task takes no verdict, only a choice of {string.Join(" or ", ids)}"
                    : $"verdict: '{verdict}' is not allowed here (expected {string.Join(" or ", item.Verdicts)})";
            return null;
        }
        if (cmd.Choice is null) return "choice: a compare task needs \"choice\" (a completion id) or \"verdict\"";
        if (!ids.Contains(cmd.Choice)) return $"choice: '{cmd.Choice}' is not a completion of this task (expected one of {string.Join(", ", ids)})";
        if (cmd.Strength is { } s)
        {
            if (!item.AskStrength) return "strength: this task takes no strength";
            if (!ItemParts.Strengths.Contains(s)) return $"strength: expected {string.Join(" or ", ItemParts.Strengths)}";
        }
        return null;
    }

    static string? ScoreProblem(FeedbackItem item, SubmitRating cmd)
    {
        if (cmd.Choice is not null || cmd.Verdict is not null) return "scores: a score task needs \"scores\" ({completion id: 1..7}), not \"choice\" or \"verdict\"";
        if (cmd.Strength is not null) return "strength: only a pair's choice takes a strength";
        var ids = item.Completions.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        if (item.Criteria.Count == 0)
        {
            if (cmd.Criteria is not null || cmd.Scores is null) return "scores: expected {completion id: 1..7} (this task has no criteria)";
            foreach (var (id, v) in cmd.Scores)
            {
                if (!ids.Contains(id)) return $"scores.{id}: not a completion of this task";
                if (v is < 1 or > 7) return $"scores.{id}: {v} is outside 1..7";
            }
            var missing = ids.Where(id => !cmd.Scores.ContainsKey(id)).ToList();
            return missing.Count == 0 ? null : $"scores: missing a score for {string.Join(", ", missing)}";
        }
        if (cmd.Criteria is null)
            return $"scores: expected {{completion id: {{criterion: 1..7}}}} for the criteria {string.Join(", ", item.Criteria)}";
        foreach (var (id, byCriterion) in cmd.Criteria)
        {
            if (!ids.Contains(id)) return $"scores.{id}: not a completion of this task";
            foreach (var (name, v) in byCriterion)
            {
                if (!item.Criteria.Contains(name)) return $"scores.{id}.{name}: not a criterion of this task (expected {string.Join(", ", item.Criteria)})";
                if (v is < 1 or > 7) return $"scores.{id}.{name}: {v} is outside 1..7";
            }
            if (item.Criteria.FirstOrDefault(c => !byCriterion.ContainsKey(c)) is { } gap) return $"scores.{id}.{gap}: missing";
        }
        var unscored = ids.Where(id => !cmd.Criteria.ContainsKey(id)).ToList();
        return unscored.Count == 0 ? null : $"scores: missing scores for {string.Join(", ", unscored)}";
    }
}
