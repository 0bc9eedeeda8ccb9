namespace Rlft.Actors.Feedback;

/// <summary>
/// Who may call the API, as the request path sees it: token hash → rater. It starts from the config and is replaced
/// by the feedback actor with the journal's view once recovery completes and after each rater change is durable (before
/// the admin's answer), so a revoked token is refused from the next request on. Lookups are lock-free (one immutable
/// table swapped whole).
/// </summary>
internal sealed class RaterRegistry
{
    public sealed record Rater(string Name, bool Revoked, string Source);

    volatile IReadOnlyDictionary<string, Rater> _byHash;
    readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RaterRegistry(IReadOnlyList<RaterEntry> configured) =>
        _byHash = configured.ToDictionary(r => r.TokenSha256, r => new Rater(r.Name, r.Revoked, "config"), StringComparer.Ordinal);

    /// <summary>Completes once the journal's raters are known (raters added at runtime are not before that).</summary>
    public Task Loaded => _loaded.Task;

    public Rater? Find(string tokenSha256) => _byHash.GetValueOrDefault(tokenSha256);

    public bool IsTokenHash(string hash) => _byHash.ContainsKey(hash);

    public void Replace(IEnumerable<(string Name, string TokenSha256, bool Revoked, string Source)> raters)
    {
        _byHash = raters.ToDictionary(r => r.TokenSha256, r => new Rater(r.Name, r.Revoked, r.Source), StringComparer.Ordinal);
        _loaded.TrySetResult();
    }
}
