namespace Rlft.Actors.Feedback;

/// <summary>
/// The raters: those in the config (fixed until a restart) and what the journal says since (raters added through the
/// admin API, revocations, new tokens). Only tokens' SHA-256 are kept. A rater revoked in the config stays revoked.
/// </summary>
internal sealed class RaterBook(IReadOnlyList<RaterEntry> configured)
{
    readonly Dictionary<string, RaterEntry> _config = configured.ToDictionary(r => r.Name, StringComparer.Ordinal);
    readonly Dictionary<string, RaterState> _journal = new(StringComparer.Ordinal);

    public bool Knows(string name) => _config.ContainsKey(name) || _journal.ContainsKey(name);

    /// <summary>The event for a change, or the reason it is refused.</summary>
    public (IRaterEvent? Event, RatingRejected? Rejection) Decide(ChangeRater cmd, long now)
    {
        if (!FeedbackItem.IsValidId(cmd.Name))
            return (null, new RatingRejected(RejectionCode.Invalid, "name: expected 1-128 characters of A-Z a-z 0-9 . _ : -"));
        if (cmd.Change != RaterChange.Revoke && (cmd.TokenSha256 is null || !RaterTokens.IsHash(cmd.TokenSha256)))
            return (null, new RatingRejected(RejectionCode.Invalid, "token: expected a SHA-256"));
        if (cmd.TokenSha256 is { } hash && Effective().Any(r => r.TokenSha256 == hash))
            return (null, new RatingRejected(RejectionCode.Conflict, "token: already in use"));
        return cmd.Change switch
        {
            RaterChange.Add when Knows(cmd.Name) => (null, new RatingRejected(RejectionCode.Conflict, $"name: rater '{cmd.Name}' already exists")),
            RaterChange.Add => (new RaterAdded(cmd.Name, cmd.TokenSha256!, now), null),
            _ when !Knows(cmd.Name) => (null, new RatingRejected(RejectionCode.UnknownRater, $"no rater named '{cmd.Name}'")),
            RaterChange.Revoke => (new RaterRevoked(cmd.Name, now), null),
            _ when _config.TryGetValue(cmd.Name, out var c) && c.Revoked =>
                (null, new RatingRejected(RejectionCode.Conflict, $"rater '{cmd.Name}' is revoked in the config; only a config change restores them")),
            _ => (new RaterTokenIssued(cmd.Name, cmd.TokenSha256!, now), null),
        };
    }

    public void Apply(IRaterEvent e)
    {
        var before = _journal.GetValueOrDefault(e.Name);
        _journal[e.Name] = e switch
        {
            RaterAdded a => new RaterState(a.Name, a.TokenSha256, false, a.AtMs, a.AtMs),
            RaterTokenIssued t => new RaterState(t.Name, t.TokenSha256, false, before?.AddedAtMs ?? 0, t.AtMs),
            RaterRevoked r => (before ?? new RaterState(r.Name, null, false, 0, r.AtMs)) with { Revoked = true, ChangedAtMs = r.AtMs },
            _ => throw new ArgumentException($"unknown rater event {e.GetType().Name}"),
        };
    }

    /// <summary>Every rater as the auth check sees them: name, current token hash, revoked, and where they come from.</summary>
    public IReadOnlyList<(string Name, string TokenSha256, bool Revoked, string Source)> Effective()
    {
        var list = new List<(string, string, bool, string)>();
        foreach (var c in _config.Values)
        {
            var j = _journal.GetValueOrDefault(c.Name);
            list.Add((c.Name, j?.TokenSha256 ?? c.TokenSha256, c.Revoked || j is { Revoked: true }, "config"));
        }
        foreach (var j in _journal.Values.Where(j => !_config.ContainsKey(j.Name)))
            list.Add((j.Name, j.TokenSha256!, j.Revoked, "api"));
        return list.OrderBy(r => r.Item1, StringComparer.Ordinal).ToList();
    }

    public IReadOnlyList<RaterState> JournalState() => _journal.Values.OrderBy(r => r.Name, StringComparer.Ordinal).ToList();

    public void Restore(IEnumerable<RaterState> states)
    {
        foreach (var s in states) _journal[s.Name] = s;
    }
}
