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
    /// <summary>Pair answers offered besides A and B, unless an item says otherwise: "tie", "both-bad".</summary>
    public IReadOnlyList<string> Verdicts { get; init; } = ItemParts.AllVerdicts;
    /// <summary>Whether a pair's choice may say "slightly" or "much" better, unless an item says otherwise.</summary>
    public bool AskStrength { get; init; } = true;
    public RationalePolicy Rationale { get; init; } = RationalePolicy.Optional;
    /// <summary>Criteria each scored 1..7 on score items, unless an item says otherwise (empty: one overall score).</summary>
    public IReadOnlyList<string> Criteria { get; init; } = [];
    /// <summary>How long after a rating its rater may take it back (zero: never).</summary>
    public TimeSpan UndoWindow { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Raters flagging an item as broken before it closes as discarded (0: only the admin discards).</summary>
    public int CloseAfterFlags { get; init; }
    /// <summary>Guideline name → Markdown ("default", "compare", "score", or a name items give).</summary>
    public IReadOnlyDictionary<string, string> Guidelines { get; init; } = new Dictionary<string, string>();
    /// <summary>Where Kestrel listens (port 0 picks a free port); `rlft feedback --urls` overrides it.</summary>
    public IReadOnlyList<string> Urls { get; init; } = ["http://127.0.0.1:5080"];

    static readonly string[] Keys =
        ["urls", "journal", "raters-per-item", "item-timeout-seconds", "lease-seconds", "fallback", "max-request-bytes",
         "rate-per-second", "rate-burst", "tick-ms", "snapshot-every", "admin-token-sha256", "raters",
         "verdicts", "ask-strength", "rationale", "criteria", "undo-seconds", "close-after-flags", "guidelines", "guideline-files"];
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
        var verdicts = config.GetStringList($"{path}.verdicts", d.Verdicts);
        for (int i = 0; i < verdicts.Count; i++)
            if (!ItemParts.AllVerdicts.Contains(verdicts[i]) || verdicts.Take(i).Contains(verdicts[i]))
                throw new ConfigException($"{path}.verdicts[{i}]: expected each of {string.Join(", ", ItemParts.AllVerdicts)} at most once (in {config.Source})");
        var criteria = config.GetStringList($"{path}.criteria", d.Criteria);
        if (criteria.Count > FeedbackItem.MaxCriteria) throw new ConfigException($"{path}.criteria: at most {FeedbackItem.MaxCriteria} (in {config.Source})");
        for (int i = 0; i < criteria.Count; i++)
            if (!FeedbackItem.IsValidId(criteria[i]) || criteria.Take(i).Contains(criteria[i]))
                throw new ConfigException($"{path}.criteria[{i}]: expected a distinct name of 1-128 characters of A-Z a-z 0-9 . _ : - (in {config.Source})");
        return new FeedbackOptions
        {
            Verdicts = verdicts,
            AskStrength = config.GetBool($"{path}.ask-strength", d.AskStrength),
            Rationale = Enum.Parse<RationalePolicy>(config.GetEnum($"{path}.rationale", ["off", "optional", "required"], "optional"), ignoreCase: true),
            Criteria = criteria,
            UndoWindow = TimeSpan.FromSeconds(config.GetInt($"{path}.undo-seconds", (int)d.UndoWindow.TotalSeconds, 0, 24 * 3600)),
            CloseAfterFlags = config.GetInt($"{path}.close-after-flags", d.CloseAfterFlags, 0, FeedbackItem.MaxRatersNeeded),
            Guidelines = ReadGuidelines(config, path),
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

    /// <summary>
    /// <c>guidelines { NAME = "markdown" }</c> and <c>guideline-files { NAME = "path.md" }</c> (relative to the config
    /// file's folder); a name given in both, a bad name, a missing file or an oversized text is an error naming the key.
    /// </summary>
    static Dictionary<string, string> ReadGuidelines(RlftConfig config, string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        string baseDir = File.Exists(config.Source) ? Path.GetDirectoryName(Path.GetFullPath(config.Source))! : Directory.GetCurrentDirectory();
        foreach (var (key, fromFile) in new[] { ("guidelines", false), ("guideline-files", true) })
        {
            if (config.Has($"{path}.{key}") && !config.Config.GetValue($"{path}.{key}").IsObject())
                throw new ConfigException($"{path}.{key}: expected an object of name = {(fromFile ? "\"file.md\"" : "\"markdown\"")} (in {config.Source})");
            foreach (var name in config.Keys($"{path}.{key}").Order(StringComparer.Ordinal))
            {
                string at = $"{path}.{key}.{name}";
                if (!FeedbackItem.IsValidId(name)) throw new ConfigException($"{at}: a guideline name needs 1-128 characters of A-Z a-z 0-9 . _ : - (in {config.Source})");
                if (result.ContainsKey(name)) throw new ConfigException($"{at}: guideline '{name}' is also given in {path}.guidelines (in {config.Source})");
                string text = config.GetString(at);
                if (fromFile)
                {
                    string file = Path.IsPathRooted(text) ? text : Path.Combine(baseDir, text);
                    try { text = File.ReadAllText(file); }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        throw new ConfigException($"{at}: cannot read '{file}' ({e.Message}) (in {config.Source})");
                    }
                }
                if (text.Length > GuidelineBook.MaxLength) throw new ConfigException($"{at}: longer than {GuidelineBook.MaxLength} characters (in {config.Source})");
                result[name] = text;
            }
        }
        return result;
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
