namespace Rlft.Actors.Feedback;

/// <summary>
/// Every version of every guideline, as folded from <see cref="GuidelineSet"/> events. Versions count from 1 per name.
/// A configured text becomes a new version when it differs from the text last taken from the config (not from the
/// current one), so an admin's edit survives restarts until the config itself changes.
/// </summary>
internal sealed class GuidelineBook
{
    public const int MaxLength = 65_536;
    readonly Dictionary<string, List<GuidelineSet>> _versions = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _lastFromConfig = new(StringComparer.Ordinal);

    public bool Has(string name) => _versions.ContainsKey(name);

    public GuidelineSet? Current(string name) => _versions.TryGetValue(name, out var v) ? v[^1] : null;

    public GuidelineSet? Get(GuidelineRef r) =>
        _versions.TryGetValue(r.Name, out var v) && r.Version >= 1 && r.Version <= v.Count ? v[r.Version - 1] : null;

    /// <summary>The reference to the guideline an item is rated under now, or null when none applies.</summary>
    public GuidelineRef? For(FeedbackItem item) =>
        item.GuidelineName(Has) is { } name ? new GuidelineRef(name, _versions[name].Count) : null;

    /// <summary>The event for a new version, or null when the text equals the current version.</summary>
    public GuidelineSet? Decide(string name, string markdown, string source, long now)
    {
        if (source == "config" ? _lastFromConfig.GetValueOrDefault(name) == markdown : Current(name)?.Markdown == markdown) return null;
        return new GuidelineSet(name, (_versions.TryGetValue(name, out var v) ? v.Count : 0) + 1, markdown, source, now);
    }

    public void Apply(GuidelineSet e)
    {
        if (!_versions.TryGetValue(e.Name, out var list)) _versions[e.Name] = list = [];
        list.Add(e);
        if (e.Source == "config") _lastFromConfig[e.Name] = e.Markdown;
    }

    public IReadOnlyList<GuidelineSet> All() => _versions.OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => kv.Value).ToList();

    public IReadOnlyList<GuidelineVersion> Versions() => All().Select(e => new GuidelineVersion(e.Name, e.Version, e.Markdown, e.AtMs, e.Source)).ToList();
}
