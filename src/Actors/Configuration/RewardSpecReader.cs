using System.Text.RegularExpressions;
using Rlft.Reward;
using Rlft.Reward.Pipeline;
using Rlft.Reward.Ratings;
using Rlft.Reward.Sources;

namespace Rlft.Actors.Configuration;

/// <summary>
/// Reads a reward spec (the <c>rewards { ... }</c> section, see hocon/rewards/example.conf) into a
/// <see cref="RewardSpec"/> and builds its pipeline. Every key is checked; errors name the full key
/// path, e.g. <c>rewards.components[1].weight: -1 is outside [0, Infinity]</c>.
/// </summary>
internal static partial class RewardSpecReader
{
    public static readonly IReadOnlyList<string> SourceKinds =
        ["exact-match", "numeric-match", "regex", "length", "json", "sections", "repetition", "function", "http", "reward-model", "human", "classifier"];

    static readonly string[] CommonKeys = ["name", "source", "weight", "normalize", "clip", "on-missing", "substitute"];

    static readonly Dictionary<string, string[]> SourceKeys = new()
    {
        ["exact-match"] = ["extract", "case-sensitive"],
        ["numeric-match"] = ["extract", "abs-tolerance", "rel-tolerance"],
        ["regex"] = ["pattern", "match-score", "miss-score"],
        ["length"] = ["target", "unit"],
        ["json"] = ["required-keys"],
        ["sections"] = ["sections", "in-order"],
        ["repetition"] = ["n"],
        ["function"] = ["function"],
        ["http"] = ["url", "timeout-seconds", "retries", "backoff-seconds", "max-batch"],
        ["reward-model"] = ["model", "max-batch"],
        ["human"] = ["min-raters", "timeout-seconds", "aggregate"],
        ["classifier"] = ["model", "label", "score", "text", "max-batch", "max-length"],
    };

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex NamePattern();

    /// <summary>Builds the pipeline the spec at <paramref name="path"/> describes, checking what the sources need.</summary>
    public static RewardPipeline Build(RlftConfig config, RewardEnvironment environment, string path = "rewards")
    {
        var spec = Read(config, path);
        var components = spec.Components.Select((c, i) =>
        {
            try { return new RewardComponent(RewardPipelineFactory.CreateSource(c.Options.Name, c.Source, environment), c.Options); }
            catch (ArgumentException e) { throw new ConfigException($"{path}.components[{i}]: {e.Message} (in {config.Source})"); }
        }).ToList();
        return new RewardPipeline(components, spec.TotalClip);
    }

    public static RewardSpec Read(RlftConfig config, string path = "rewards")
    {
        if (!config.Has(path)) throw new ConfigException($"{path}: missing required section (in {config.Source})");
        var root = config.Section(path);
        root.RejectUnknownKeys("", ["components", "clip"], path);
        var clip = ReadClip(root, "clip", path, config.Source);
        var items = IsEmptyList(root, "components") ? [] : Prefixed(path, config.Source, () => root.GetObjectList("components"));
        if (items.Count == 0) throw new ConfigException($"{path}.components: at least one component is required (in {config.Source})");
        var components = new List<RewardComponentSpec>();
        for (int i = 0; i < items.Count; i++)
        {
            string at = $"{path}.components[{i}]";
            var c = Prefixed(at, config.Source, () => ReadComponent(items[i]));
            int clash = components.FindIndex(x => x.Options.Name == c.Options.Name);
            if (clash >= 0)
                throw new ConfigException($"{at}.name: '{c.Options.Name}' is already the name of {path}.components[{clash}] (set a distinct name) (in {config.Source})");
            components.Add(c);
        }
        return new RewardSpec(components, clip);
    }

    static RewardComponentSpec ReadComponent(RlftConfig c)
    {
        string kind = c.GetEnum("source", SourceKinds);
        c.RejectUnknownKeys("", [.. CommonKeys, .. SourceKeys[kind]]);
        string name = c.GetString("name", kind);
        if (!NamePattern().IsMatch(name)) throw Bad("name", $"'{name}' may hold only letters, digits, '-' and '_'");
        var missing = c.GetEnum("on-missing", ["drop", "substitute"], "drop") == "drop"
            ? MissingPolicy.Drop
            : MissingPolicy.Substitute(c.GetDouble("substitute", min: -1e300, max: 1e300));
        if (missing.Action == MissingAction.Drop && c.Has("substitute")) throw Bad("substitute", "only allowed with on-missing = substitute");
        var options = new ComponentOptions(name, c.GetDouble("weight", 1.0, min: 0, max: 1e300))
        {
            Normalization = c.GetEnum("normalize", ["none", "running", "batch"], "none") switch
            {
                "running" => Normalization.Running,
                "batch" => Normalization.Batch,
                _ => Normalization.None,
            },
            Clip = ReadClip(c, "clip", "", ""),
            Missing = missing,
        };
        return new RewardComponentSpec(options, ReadSource(kind, c));
    }

    static SourceSpec ReadSource(string kind, RlftConfig c) => kind switch
    {
        "exact-match" => new ExactMatchSpec(OptionalRegex(c, "extract"), c.GetBool("case-sensitive", false)),
        "numeric-match" => new NumericMatchSpec(OptionalRegex(c, "extract"), c.GetDouble("abs-tolerance", 1e-9, min: 0), c.GetDouble("rel-tolerance", 1e-9, min: 0)),
        "regex" => new RegexSpec(Regex(c, "pattern"), c.GetDouble("match-score", 1, min: -1e300, max: 1e300), c.GetDouble("miss-score", 0, min: -1e300, max: 1e300)),
        "length" => new LengthSpec(c.GetInt("target", min: 1), c.GetEnum("unit", ["words", "characters"], "words") == "words" ? LengthUnit.Words : LengthUnit.Characters),
        "json" => new JsonSpec(StringList(c, "required-keys")),
        "sections" => new SectionsSpec(NonEmpty(c, "sections"), c.GetBool("in-order", true)),
        "repetition" => new RepetitionSpec(c.GetInt("n", 3, min: 1, max: 64)),
        "function" => new FunctionSpec(c.GetString("function")),
        "http" => new HttpSpec(new HttpScorerOptions(
            Url(c, "url"),
            TimeSpan.FromSeconds(c.GetDouble("timeout-seconds", 10, min: 0.001, max: 3600)),
            c.GetInt("retries", 2, min: 0, max: 10),
            TimeSpan.FromSeconds(c.GetDouble("backoff-seconds", 0.5, min: 0, max: 600)),
            c.GetInt("max-batch", 64, min: 1))),
        "reward-model" => new RewardModelSpec(c.GetString("model"), c.GetInt("max-batch", 32, min: 1)),
        "human" => new HumanSpec(new HumanRatingOptions(
            c.GetInt("min-raters", 1, min: 1),
            TimeSpan.FromSeconds(c.GetDouble("timeout-seconds", 600, min: 0.001)),
            c.GetEnum("aggregate", ["mean", "median"], "mean") == "mean" ? ScoreAggregate.Mean : ScoreAggregate.Median)),
        "classifier" => new ClassifierSpec(c.GetString("model"), c.GetString("label"),
            c.GetEnum("score", ["logit", "probability", "margin"], "logit") switch { "probability" => ClassifierScore.Probability, "margin" => ClassifierScore.Margin, _ => ClassifierScore.Logit },
            c.GetEnum("text", ["completion", "prompt-and-completion"], "completion") == "prompt-and-completion",
            c.GetInt("max-batch", 32, min: 1), c.GetInt("max-length", 512, min: 8)),
        _ => throw Bad("source", $"unknown source '{kind}'"),
    };

    static ClipRange ReadClip(RlftConfig c, string key, string prefix, string file)
    {
        if (!c.Has(key)) return ClipRange.Unbounded;
        return Prefixed(prefix, file, () =>
        {
            c.RejectUnknownKeys(key, ["min", "max"]);
            double min = c.GetDouble($"{key}.min", double.NegativeInfinity), max = c.GetDouble($"{key}.max", double.PositiveInfinity);
            if (min > max) throw Bad(key, $"min {min} is above max {max}");
            return new ClipRange(min, max);
        });
    }

    static IReadOnlyList<string> NonEmpty(RlftConfig c, string key)
    {
        var list = StringList(c, key);
        return list.Count > 0 && list.All(s => s.Length > 0) ? list : throw Bad(key, "needs at least one non-empty entry");
    }

    /// <summary>A list of strings, absent or <c>[]</c> meaning empty (the HOCON parser gives <c>[]</c> no array type).</summary>
    static IReadOnlyList<string> StringList(RlftConfig c, string key)
    {
        return IsEmptyList(c, key) ? [] : c.GetStringList(key);
    }

    static bool IsEmptyList(RlftConfig c, string key)
    {
        if (!c.Has(key)) return true;
        var v = c.Config.GetValue(key);
        // Akka's parser stores `[]` as an empty array plus, before a ',' or '}', a whitespace literal.
        return v is null || v.Values.All(e => e is Akka.Configuration.Hocon.HoconArray { Count: 0 }
            || (e is Akka.Configuration.Hocon.HoconLiteral l && string.IsNullOrWhiteSpace(l.Value)));
    }

    static string? OptionalRegex(RlftConfig c, string key) => c.Has(key) ? Regex(c, key) : null;

    static string Regex(RlftConfig c, string key)
    {
        string pattern = c.GetString(key);
        try { _ = new Regex(pattern); }
        catch (ArgumentException e) { throw Bad(key, $"invalid regular expression: {e.Message}"); }
        return pattern;
    }

    static Uri Url(RlftConfig c, string key)
    {
        string s = c.GetString(key);
        return Uri.TryCreate(s, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps)
            ? u : throw Bad(key, $"'{s}' is not an http(s) URL");
    }

    static ConfigException Bad(string key, string what) => new($"{key}: {what}");

    /// <summary>Errors from a sub-object name only its own keys; this puts the parent path in front and the file after.</summary>
    static T Prefixed<T>(string prefix, string file, Func<T> read)
    {
        try { return read(); }
        catch (ConfigException e)
        {
            string message = e.Message;
            int note = message.LastIndexOf(" (in ", StringComparison.Ordinal);
            if (note > 0) message = message[..note];
            string full = prefix.Length == 0 ? message : $"{prefix}.{message}";
            throw new ConfigException(file.Length == 0 ? full : $"{full} (in {file})");
        }
    }
}
