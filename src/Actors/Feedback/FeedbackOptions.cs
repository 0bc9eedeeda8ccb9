using System.Security.Cryptography;
using System.Text;
using Rlft.Actors.Configuration;

namespace Rlft.Actors.Feedback;

/// <summary>A rater as configured: the name ratings are stored under and the SHA-256 of their bearer token.</summary>
public sealed record RaterEntry(string Name, string TokenSha256, bool Revoked = false);

/// <summary>
/// Settings of a feedback node (HOCON section <c>rlft.feedback</c>, see hocon/feedback.conf). Durations are in
/// seconds; every key is validated and an unknown key is an error naming its path.
/// </summary>
public sealed record FeedbackOptions
{
    /// <summary>SQLite file holding the journal (created on first start).</summary>
    public string Journal { get; init; } = "feedback.db";
    /// <summary>Raters asked per item, unless the item says otherwise.</summary>
    public int RatersPerItem { get; init; } = 1;
    /// <summary>After this, an item closes with its fallback marker, keeping the ratings it got.</summary>
    public TimeSpan ItemTimeout { get; init; } = TimeSpan.FromHours(1);
    /// <summary>How long a rater holds an item before it may go to someone else.</summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>What a consumer should do with a timed-out item: "drop" or "source:NAME" (another reward source).</summary>
    public string Fallback { get; init; } = "drop";
    public int MaxRequestBytes { get; init; } = 64 * 1024;
    /// <summary>Per-rater token bucket: sustained requests per second and burst size.</summary>
    public int RatePerSecond { get; init; } = 10;
    public int RateBurst { get; init; } = 40;
    public TimeSpan Tick { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// Journal events between state snapshots (0: never); bounds the replay on restart. A snapshot is the whole
    /// state, so it grows with the history: frequent snapshots of a large history cost more than they save.
    /// </summary>
    public int SnapshotEvery { get; init; } = 100_000;
    public string? AdminTokenSha256 { get; init; }
    public IReadOnlyList<RaterEntry> Raters { get; init; } = [];
    /// <summary>Where Kestrel listens (port 0 picks a free port); `rlft feedback --urls` overrides it.</summary>
    public IReadOnlyList<string> Urls { get; init; } = ["http://127.0.0.1:5080"];

    static readonly string[] Keys =
        ["urls", "journal", "raters-per-item", "item-timeout-seconds", "lease-seconds", "fallback", "max-request-bytes",
         "rate-per-second", "rate-burst", "tick-ms", "snapshot-every", "admin-token-sha256", "raters"];
    static readonly string[] RaterKeys = ["name", "token-sha256", "revoked"];

    /// <summary>
    /// Reads and validates <paramref name="path"/>; a relative journal path is resolved against the config file's
    /// folder, and a missing one is <paramref name="defaultJournal"/> (when given) or feedback.db beside the file.
    /// </summary>
    public static FeedbackOptions FromConfig(RlftConfig config, string path = "rlft.feedback", string? defaultJournal = null)
    {
        var d = new FeedbackOptions();
        config.RejectUnknownKeys(path, Keys);
        string journal;
        if (!config.Has($"{path}.journal") && defaultJournal is not null) journal = defaultJournal;
        else
        {
            journal = config.GetString($"{path}.journal", d.Journal);
            if (!Path.IsPathRooted(journal) && File.Exists(config.Source))
                journal = Path.Combine(Path.GetDirectoryName(config.Source)!, journal);
        }
        var urls = config.GetStringList($"{path}.urls", d.Urls);
        if (urls.Count == 0) throw new ConfigException($"{path}.urls: at least one address is needed (in {config.Source})");
        for (int i = 0; i < urls.Count; i++)
            if (!Uri.TryCreate(urls[i], UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                throw new ConfigException($"{path}.urls[{i}]: '{urls[i]}' is not an http(s) address like http://127.0.0.1:5080 (in {config.Source})");
        var raters = new List<RaterEntry>();
        var items = config.GetObjectList($"{path}.raters");
        for (int i = 0; i < items.Count; i++)
        {
            string at = $"{path}.raters[{i}]";
            items[i].RejectUnknownKeys("", RaterKeys, at);
            var r = new RaterEntry(items[i].GetString("name"), items[i].GetString("token-sha256").ToLowerInvariant(), items[i].GetBool("revoked", false));
            if (!FeedbackItem.IsValidId(r.Name)) throw new ConfigException($"{at}.name: expected 1-128 characters of A-Z a-z 0-9 . _ : - (in {config.Source})");
            if (!RaterTokens.IsHash(r.TokenSha256)) throw new ConfigException($"{at}.token-sha256: expected 64 hex digits (use 'rlft feedback-token') (in {config.Source})");
            if (raters.Any(x => x.Name == r.Name)) throw new ConfigException($"{at}.name: '{r.Name}' is configured twice (in {config.Source})");
            if (raters.Any(x => x.TokenSha256 == r.TokenSha256)) throw new ConfigException($"{at}.token-sha256: the same token is configured for two raters (in {config.Source})");
            raters.Add(r);
        }
        string? admin = config.Has($"{path}.admin-token-sha256") ? config.GetString($"{path}.admin-token-sha256").ToLowerInvariant() : null;
        if (admin is not null && !RaterTokens.IsHash(admin))
            throw new ConfigException($"{path}.admin-token-sha256: expected 64 hex digits (in {config.Source})");
        return new FeedbackOptions
        {
            Journal = journal,
            RatersPerItem = config.GetInt($"{path}.raters-per-item", d.RatersPerItem, 1, FeedbackItem.MaxRatersNeeded),
            ItemTimeout = TimeSpan.FromSeconds(config.GetDouble($"{path}.item-timeout-seconds", d.ItemTimeout.TotalSeconds, 1, FeedbackItem.MaxTimeoutMs / 1000)),
            Lease = TimeSpan.FromSeconds(config.GetDouble($"{path}.lease-seconds", d.Lease.TotalSeconds, 1, 7 * 24 * 3600)),
            Fallback = config.GetString($"{path}.fallback", d.Fallback),
            MaxRequestBytes = config.GetInt($"{path}.max-request-bytes", d.MaxRequestBytes, 1024, 16 * 1024 * 1024),
            RatePerSecond = config.GetInt($"{path}.rate-per-second", d.RatePerSecond, 1, 1_000_000),
            RateBurst = config.GetInt($"{path}.rate-burst", d.RateBurst, 1, 1_000_000),
            Tick = TimeSpan.FromMilliseconds(config.GetInt($"{path}.tick-ms", (int)d.Tick.TotalMilliseconds, 10, 60_000)),
            SnapshotEvery = config.GetInt($"{path}.snapshot-every", d.SnapshotEvery, 0, 10_000_000),
            AdminTokenSha256 = admin,
            Raters = raters,
            Urls = urls,
        };
    }
}

/// <summary>Bearer tokens: random, shown once when issued, stored only as their SHA-256.</summary>
public static class RaterTokens
{
    public static string NewToken() =>
        "rlft_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    public static bool IsHash(string s) => s.Length == 64 && s.All(Uri.IsHexDigit);

    /// <summary>The config line for a rater, as printed by <c>rlft feedback-token</c>.</summary>
    public static string ConfigLine(string rater, string token) => $"{{ name = \"{rater}\", token-sha256 = \"{Hash(token)}\" }}";
}
