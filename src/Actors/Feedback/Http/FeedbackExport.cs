using System.Text.Json;
using Rlft.Reward.Ratings;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// JSONL in the data formats of DESIGN.md: preferences <c>{"prompt","chosen","rejected","rater","time"}</c> (one
/// line per pair rating) and scores <c>{"prompt","completion","score","rater","time"}</c> (one line per scored
/// completion), each with everything the rater said: <c>taskId</c>; for pairs <c>answer</c> (a, b, tie, both-bad),
/// <c>strength</c>, and the training <c>label</c> (P(chosen ≻ rejected)) and <c>weight</c> from
/// <see cref="PreferenceLabels"/>; for scores <c>completionId</c> and per-criterion <c>criteria</c> (then
/// <c>score</c> is their mean); <c>rationale</c> and the <c>guideline</c> version when there are. A conversation item
/// is exported in TRL's conversational form: <c>prompt</c> is its message list, completions are one assistant message.
/// Every rating is exported as given; aggregation across raters is the reward pipeline's job.
/// </summary>
internal static class FeedbackExport
{
    static readonly JsonSerializerOptions Json = FeedbackJson.Web;

    public static IEnumerable<string> Preferences(ExportData data, PreferenceWeighting weighting)
    {
        var items = data.Items.ToDictionary(i => i.Id, StringComparer.Ordinal);
        foreach (var r in data.Ratings)
        {
            var item = items[r.TaskId];
            if (item.Kind != FeedbackKind.Compare) continue;
            var answer = r.Verdict switch
            {
                ItemParts.Tie => PairAnswer.Tie,
                ItemParts.BothBad => PairAnswer.BothBad,
                _ when r.Choice == item.Completions[0].Id => PairAnswer.A,
                _ => PairAnswer.B,
            };
            var strength = r.Strength switch
            {
                ItemParts.Slightly => PreferenceStrength.Slightly,
                ItemParts.Much => PreferenceStrength.Much,
                _ => PreferenceStrength.Unstated,
            };
            if (PreferenceLabels.Label(answer, strength, weighting) is not { } label) continue;
            var (chosen, rejected) = label.FirstIsChosen ? (item.Completions[0], item.Completions[1]) : (item.Completions[1], item.Completions[0]);
            var line = Line(item);
            line["chosen"] = Completion(item, chosen.Text);
            line["rejected"] = Completion(item, rejected.Text);
            var extra = new Dictionary<string, object?>
            {
                ["answer"] = answer switch { PairAnswer.A => "a", PairAnswer.B => "b", PairAnswer.Tie => ItemParts.Tie, _ => ItemParts.BothBad },
            };
            if (r.Strength is not null) extra["strength"] = r.Strength;
            extra["label"] = label.Target;
            extra["weight"] = label.Weight;
            yield return Finish(line, r, item, extra);
        }
    }

    public static IEnumerable<string> Scores(ExportData data)
    {
        var items = data.Items.ToDictionary(i => i.Id, StringComparer.Ordinal);
        foreach (var r in data.Ratings)
        {
            var item = items[r.TaskId];
            if (item.Kind != FeedbackKind.Score) continue;
            foreach (var c in item.Completions)
            {
                var line = Line(item);
                line["completion"] = Completion(item, c.Text);
                var extra = new Dictionary<string, object?> { ["completionId"] = c.Id };
                if (r.Criteria is not null && r.Criteria.TryGetValue(c.Id, out var byCriterion))
                {
                    line["score"] = byCriterion.Values.Average();
                    extra["criteria"] = byCriterion;
                }
                else if (r.Scores is not null && r.Scores.TryGetValue(c.Id, out int score)) line["score"] = score;
                else continue;
                yield return Finish(line, r, item, extra);
            }
        }
    }

    /// <summary>Skips and flags: <c>{"taskId","rater","kind":"skip"|"broken","reason","time"}</c>.</summary>
    public static IEnumerable<string> SetAside(ExportData data) =>
        data.SetAside.Select(s => JsonSerializer.Serialize(new { taskId = s.ItemId, rater = s.Rater, kind = s.Broken ? "broken" : "skip", reason = s.Reason, time = FeedbackEndpoints.Time(s.AtMs) }, Json));

    /// <summary>Every standing rating with its ids and every part of its answer (admin view; used to audit durability).</summary>
    public static IEnumerable<string> Ratings(ExportData data) =>
        data.Ratings.Select(r => JsonSerializer.Serialize(new
        {
            ratingId = r.RatingId, taskId = r.TaskId, rater = r.Rater, choice = r.Choice, scores = r.Scores, time = FeedbackEndpoints.Time(r.AtMs),
            verdict = r.Verdict, strength = r.Strength, criteria = r.Criteria, rationale = r.Rationale, guideline = r.Guideline,
        }, Json));

    /// <summary>The prompt: its text, or the conversation.</summary>
    static Dictionary<string, object?> Line(FeedbackItem item) => new()
    {
        ["prompt"] = item.Messages is { } m ? m.Select(x => new { role = x.Role, content = x.Content }).ToList() : item.Prompt,
    };

    static object Completion(FeedbackItem item, string text) =>
        item.Messages is null ? text : new[] { new { role = "assistant", content = text } };

    /// <summary>The contract's keys first (…, rater, time), then taskId and the rest of the answer.</summary>
    static string Finish(Dictionary<string, object?> line, RatingRecord r, FeedbackItem item, Dictionary<string, object?> extra)
    {
        line["rater"] = r.Rater;
        line["time"] = FeedbackEndpoints.Time(r.AtMs);
        line["taskId"] = item.Id;
        foreach (var (k, v) in extra) line[k] = v;
        if (r.Rationale is not null) line["rationale"] = r.Rationale;
        if (r.Guideline is not null) line["guideline"] = new { name = r.Guideline.Name, version = r.Guideline.Version };
        return JsonSerializer.Serialize(line, Json);
    }
}
