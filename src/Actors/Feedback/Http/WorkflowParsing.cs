using System.Text.Json;

namespace Rlft.Actors.Feedback.Http;

internal static partial class RequestParsing
{
    /// <summary><c>{"taskId", "reason"?}</c> for a skip or a flag as broken.</summary>
    public static SetAsideTask ParseSetAside(JsonElement root, string rater, bool broken)
    {
        var f = Fields(root, "body", ["taskId", "reason"]);
        return new SetAsideTask(rater, Id(Required(f, "taskId", "body"), "taskId"), broken, f.TryGetValue("reason", out var r) ? Rationale(r, "reason") : null);
    }

    /// <summary><c>{"ratingId"?}</c>: without an id, the rater's most recent rating.</summary>
    public static UndoRating ParseUndo(JsonElement root, string rater)
    {
        var f = Fields(root, "body", ["ratingId"]);
        return new UndoRating(rater, f.TryGetValue("ratingId", out var id) ? Id(id, "ratingId") : null);
    }

    /// <summary><c>{"markdown"}</c> for the guideline named in the path.</summary>
    public static SetGuideline ParseGuideline(JsonElement root, string name)
    {
        if (!FeedbackItem.IsValidId(name)) throw new BadRequest("name: a guideline name needs 1-128 characters of A-Z a-z 0-9 . _ : -");
        var f = Fields(root, "body", ["markdown"]);
        string markdown = Str(Required(f, "markdown", "body"), "markdown");
        if (markdown.Length > GuidelineBook.MaxLength) throw new BadRequest($"markdown: longer than {GuidelineBook.MaxLength} characters");
        return new SetGuideline(name, markdown, "admin");
    }

    /// <summary><c>{"name"}</c> of a rater to add.</summary>
    public static string ParseNewRater(JsonElement root)
    {
        var f = Fields(root, "body", ["name"]);
        string name = Str(Required(f, "name", "body"), "name");
        return FeedbackItem.IsValidId(name) ? name : throw new BadRequest("name: expected 1-128 characters of A-Z a-z 0-9 . _ : -");
    }

    /// <summary><c>{"reason"?}</c> for discarding an item.</summary>
    public static string ParseDiscard(JsonElement root)
    {
        var f = Fields(root, "body", ["reason"]);
        return (f.TryGetValue("reason", out var r) ? Rationale(r, "reason") : null) ?? "discarded by the admin";
    }

    /// <summary>The id in a route (rater names, item ids), checked like the ids in bodies.</summary>
    public static string RouteId(string? value, string what) =>
        value is not null && FeedbackItem.IsValidId(value) ? value : throw new BadRequest($"{what}: expected 1-128 characters of A-Z a-z 0-9 . _ : -");
}
