using System.Text.Json;

namespace Rlft.Actors.Feedback;

/// <summary>
/// The web-default JSON options of the feedback endpoint, its export and its client: one instance, read-only from the
/// start. ASP.NET Core's <c>Results.Json(value, options)</c> assigns a type-info resolver to options that are not yet
/// read-only (<c>TypeInfoResolver ??= …</c> in <c>JsonHttpResult</c>'s constructor), while another request serializing
/// with the same instance makes it read-only: the assignment then throws, and a refusal that should have been a 409
/// went out as a 500. Options that are locked when made are never assigned to.
/// </summary>
internal static class FeedbackJson
{
    public static readonly JsonSerializerOptions Web = Create();

    internal static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
