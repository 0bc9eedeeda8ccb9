using System.Text.Json;

namespace Rlft.Actors.Feedback.Http;

/// <summary>
/// JSONL in the data formats of DESIGN.md: preferences <c>{"prompt","chosen","rejected","rater","time"}</c> (one
/// line per compare rating) and scores <c>{"prompt","completion","score","rater","time"}</c> (one line per scored
/// completion). Every rating is exported as given; aggregation across raters is the reward pipeline's job.
/// </summary>
public static class FeedbackExport
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static IEnumerable<string> Preferences(ExportData data)
    {
        var items = data.Items.ToDictionary(i => i.Id, StringComparer.Ordinal);
        foreach (var r in data.Ratings)
        {
            var item = items[r.TaskId];
            if (item.Kind != FeedbackKind.Compare || r.Choice is null) continue;
            var chosen = item.Completions.First(c => c.Id == r.Choice);
            var rejected = item.Completions.First(c => c.Id != r.Choice);
            yield return JsonSerializer.Serialize(new { prompt = item.Prompt, chosen = chosen.Text, rejected = rejected.Text, rater = r.Rater, time = FeedbackEndpoints.Time(r.AtMs) }, Json);
        }
    }

    public static IEnumerable<string> Scores(ExportData data)
    {
        var items = data.Items.ToDictionary(i => i.Id, StringComparer.Ordinal);
        foreach (var r in data.Ratings)
        {
            var item = items[r.TaskId];
            if (item.Kind != FeedbackKind.Score || r.Scores is null) continue;
            foreach (var c in item.Completions)
                yield return JsonSerializer.Serialize(new { prompt = item.Prompt, completion = c.Text, score = r.Scores[c.Id], rater = r.Rater, time = FeedbackEndpoints.Time(r.AtMs) }, Json);
        }
    }

    /// <summary>Every rating with its ids (admin view; used to audit durability).</summary>
    public static IEnumerable<string> Ratings(ExportData data) =>
        data.Ratings.Select(r => JsonSerializer.Serialize(new { ratingId = r.RatingId, taskId = r.TaskId, rater = r.Rater, choice = r.Choice, scores = r.Scores, time = FeedbackEndpoints.Time(r.AtMs) }, Json));
}
