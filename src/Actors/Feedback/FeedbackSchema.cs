using System.Globalization;
using System.Runtime.Serialization;

namespace Rlft.Actors.Feedback;

/// <summary>
/// Versions of the journal's event and snapshot schema. Version 1 (manifest without a suffix) is what the feedback
/// node wrote before the rater workflow: pair answers were A or B only, scores one per completion, no conversations,
/// guidelines, skips, undos or managed raters. Version 2 (manifest suffix <c>@2</c>) adds those as optional parts of
/// the same records and new event types. Reading upcasts to the current shape; a journal from a newer version than
/// this build knows is refused (replaying it with missing meaning would be silently wrong).
/// </summary>
internal static class FeedbackSchema
{
    public const int Current = 2;

    /// <summary>Journal events and snapshots carry a version; commands and replies (never stored) do not.</summary>
    public static bool IsVersioned(object o) => o is IFeedbackEvent or FeedbackSnapshot;

    public static (string Name, int Version) Parse(string manifest)
    {
        int at = manifest.IndexOf('@');
        if (at < 0) return (manifest, 1);
        if (!int.TryParse(manifest.AsSpan(at + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < 1)
            throw new SerializationException($"feedback manifest '{manifest}': bad schema version");
        if (v > Current)
            throw new SerializationException($"feedback manifest '{manifest}': schema {v} was written by a newer RLFT (this one reads up to {Current})");
        return (manifest[..at], v);
    }

    /// <summary>
    /// A version-1 item was answered A or B (no verdicts, no strength) with an optional nothing: its v2 meaning is
    /// spelled out here rather than left to property defaults, so a later change of defaults cannot change old items.
    /// </summary>
    public static object Upcast(object value, int version)
    {
        if (version >= Current) return value;
        return value switch
        {
            ItemEnqueued e => e with { Item = V1Item(e.Item) },
            FeedbackSnapshot s => s with
            {
                Items = s.Items.Select(i => i with { Item = V1Item(i.Item) }).ToList(),
            },
            _ => value,
        };
    }

    static FeedbackItem V1Item(FeedbackItem item) => item with
    {
        Messages = null,
        Guideline = null,
        Verdicts = [],
        AskStrength = false,
        Rationale = RationalePolicy.Optional,
        Criteria = [],
    };
}
