using System.Globalization;
using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace Rlft.Actors.Configuration;

/// <summary>
/// A configuration error; the message always names the key path (e.g. <c>rlft.job.seed</c>). One exception may
/// carry several errors (a job reports every problem it has, not just the first): <see cref="Errors"/>, one line each.
/// </summary>
public sealed class ConfigException : Exception
{
    public IReadOnlyList<string> Errors { get; }

    public ConfigException(string message) : base(message) => Errors = [message];

    public ConfigException(IReadOnlyList<string> errors) : base(string.Join("\n", errors)) =>
        Errors = errors.Count > 0 ? errors : throw new ArgumentException("at least one error", nameof(errors));
}

/// <summary>Collects configuration errors so that reading goes on past the first one; throws them all at the end.</summary>
internal sealed class ConfigErrors
{
    readonly List<string> _errors = new();

    public IReadOnlyList<string> All => _errors;

    public void Add(string error) => _errors.Add(error);

    /// <summary>The value <paramref name="read"/> returns, or <paramref name="fallback"/> with its error recorded.</summary>
    public T Read<T>(Func<T> read, T fallback)
    {
        try { return read(); }
        catch (ConfigException e) { _errors.AddRange(e.Errors); return fallback; }
    }

    public void Check(Action check) => Read(() => { check(); return 0; }, 0);

    public void ThrowIfAny()
    {
        if (_errors.Count > 0) throw new ConfigException(_errors.Distinct().ToList());
    }
}

/// <summary>
/// The one small layer through which RLFT reads HOCON: files with includes resolved relative to the
/// including file, typed getters that validate ranges, and a check that rejects unknown keys.
/// Every error names the full key path and, where known, the file.
/// </summary>
public sealed class RlftConfig
{
    public Config Config { get; }
    public string Source { get; }

    public RlftConfig(Config config, string source)
    {
        Config = config;
        Source = source;
    }

    /// <summary>The directory shipped beside the executable (and in the repository) holding presets.</summary>
    public static string HoconDirectory
    {
        get
        {
            string beside = Path.Combine(AppContext.BaseDirectory, "hocon");
            return Directory.Exists(beside) ? beside : Path.GetFullPath("hocon");
        }
    }

    /// <summary>
    /// <paramref name="path"/> when it exists; otherwise, for a relative path, the preset shipped with RLFT that it
    /// names — <c>hocon/quickstart.conf</c>, <c>quickstart.conf</c> or <c>quickstart</c> — so an installed tool runs
    /// its presets from any folder. Unchanged when neither exists (the caller reports it).
    /// </summary>
    public static string ResolvePath(string path)
    {
        if (File.Exists(path) || Path.IsPathRooted(path)) return path;
        string[] candidates =
        [
            Path.Combine(AppContext.BaseDirectory, path),
            Path.Combine(HoconDirectory, path),
            Path.Combine(HoconDirectory, path + ".conf"),
        ];
        return candidates.FirstOrDefault(File.Exists) ?? path;
    }

    /// <summary>Parses a file, resolving <c>include "other.conf"</c> relative to it (then to the preset directory).</summary>
    public static RlftConfig LoadFile(string path)
    {
        path = ResolvePath(path);
        if (!File.Exists(path)) throw new ConfigException($"config file not found: {path}");
        string full = Path.GetFullPath(path);
        return new RlftConfig(Parse(File.ReadAllText(full), Path.GetDirectoryName(full)!, full), full);
    }

    public static RlftConfig ParseText(string hocon, string source = "<text>", string? baseDirectory = null) =>
        new(Parse(hocon, baseDirectory ?? HoconDirectory, source), source);

    /// <summary>The base Akka settings (hocon/akka.conf) every node starts from.</summary>
    /// <remarks>
    /// hocon/akka.conf beside the executable (as <c>rlft</c> ships it) when there is one; otherwise the copy built into
    /// this assembly, so a program that references the Rlft.Actors package (and has no hocon folder) starts nodes too.
    /// </remarks>
    public static RlftConfig BaseAkka()
    {
        string path = Path.Combine(HoconDirectory, "akka.conf");
        if (File.Exists(path)) return LoadFile(path);
        return ParseText(EmbeddedAkka(), "akka.conf (built into Rlft.Actors)");
    }

    /// <summary>The text of hocon/akka.conf as this assembly was built with it.</summary>
    internal static string EmbeddedAkka()
    {
        using var stream = typeof(RlftConfig).Assembly.GetManifestResourceStream("Rlft.Actors.akka.conf")
            ?? throw new InvalidOperationException("the built-in akka.conf resource is missing from Rlft.Actors");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public RlftConfig WithFallback(RlftConfig fallback) => new(Config.WithFallback(fallback.Config), Source);

    static Config Parse(string text, string baseDirectory, string source)
    {
        HoconBrackets.Check(text, source);
        try
        {
            return ConfigurationFactory.ParseString(text, include => IncludeRoot(include, baseDirectory));
        }
        catch (ConfigException) { throw; }
        catch (Exception e)
        {
            throw new ConfigException($"{source}: invalid HOCON: {OneLine(e.Message, text)}");
        }
    }

    /// <summary>
    /// Akka's parser reports "... at position N:" followed by the offending text on further lines; this keeps the
    /// first line and says which line and column of the file position N is.
    /// </summary>
    static string OneLine(string message, string text)
    {
        string first = message.Split('\n')[0].Trim().TrimEnd(':');
        var m = System.Text.RegularExpressions.Regex.Match(first, @"at position (\d+)$");
        if (!m.Success || !int.TryParse(m.Groups[1].Value, out int position) || position > text.Length) return first;
        int line = 1 + text.AsSpan(0, position).Count('\n');
        int column = position - (text.LastIndexOf('\n', Math.Max(0, position - 1)) + 1) + 1;
        return $"{first[..m.Index].TrimEnd()} at line {line}, column {column}";
    }

    static HoconRoot IncludeRoot(string include, string baseDirectory)
    {
        string name = include.Trim().Trim('"');
        string[] candidates = [Path.Combine(baseDirectory, name), Path.Combine(HoconDirectory, name)];
        string? found = candidates.FirstOrDefault(File.Exists)
            ?? throw new ConfigException($"include \"{name}\" not found (looked in {baseDirectory} and {HoconDirectory})");
        string dir = Path.GetDirectoryName(Path.GetFullPath(found))!;
        return Parse(File.ReadAllText(found), dir, found).Root is { } root ? new HoconRoot(root) : throw new ConfigException($"include \"{name}\" is empty");
    }

    public bool Has(string path) => Config.HasPath(path);

    HoconValue? Value(string path) => Config.HasPath(path) ? Config.GetValue(path) : null;

    ConfigException Bad(string path, string what) => new($"{path}: {what} (in {Source})");

    public string GetString(string path, string? fallback = null)
    {
        var v = Value(path);
        if (v is null) return fallback ?? throw Bad(path, "missing required key");
        if (!v.IsString()) throw Bad(path, "expected a string");
        return v.GetString();
    }

    public string GetEnum(string path, IReadOnlyCollection<string> allowed, string? fallback = null)
    {
        string s = GetString(path, fallback);
        if (!allowed.Contains(s)) throw Bad(path, $"'{s}' is not one of {string.Join(", ", allowed)}");
        return s;
    }

    public double GetDouble(string path, double? fallback = null, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var v = Value(path);
        double d;
        if (v is null) d = fallback ?? throw Bad(path, "missing required key");
        else if (!v.IsString() || !double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out d))
            throw Bad(path, $"expected a number, got '{Describe(v)}'");
        if (double.IsNaN(d) || d < min || d > max) throw Bad(path, $"{d.ToString(CultureInfo.InvariantCulture)} is outside [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}]");
        return d;
    }

    public int GetInt(string path, int? fallback = null, int min = int.MinValue, int max = int.MaxValue)
    {
        var v = Value(path);
        long l;
        if (v is null) l = fallback ?? throw Bad(path, "missing required key");
        else if (!v.IsString() || !long.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out l))
            throw Bad(path, $"expected an integer, got '{Describe(v)}'");
        if (l < min || l > max) throw Bad(path, $"{l} is outside [{min}, {max}]");
        return (int)l;
    }

    public bool GetBool(string path, bool? fallback = null)
    {
        var v = Value(path);
        if (v is null) return fallback ?? throw Bad(path, "missing required key");
        return v.IsString() ? v.GetString().ToLowerInvariant() switch
        {
            "true" or "on" or "yes" => true,
            "false" or "off" or "no" => false,
            var s => throw Bad(path, $"expected true or false, got '{s}'"),
        } : throw Bad(path, "expected true or false");
    }

    public IReadOnlyList<string> GetStringList(string path, IReadOnlyList<string>? fallback = null)
    {
        var v = Value(path);
        if (v is null) return fallback ?? throw Bad(path, "missing required key");
        if (IsEmptyList(v)) return [];
        if (!v.IsArray()) throw Bad(path, "expected a list");
        return v.GetArray().Select((e, i) => e.IsString() ? e.GetString() : throw Bad($"{path}[{i}]", "expected a string")).ToList();
    }

    /// <summary>The sub-objects of a list of objects, each addressable by its indexed path.</summary>
    public IReadOnlyList<RlftConfig> GetObjectList(string path)
    {
        var v = Value(path);
        if (v is null || IsEmptyList(v)) return [];
        if (!v.IsArray()) throw Bad(path, "expected a list of objects");
        var items = new List<RlftConfig>();
        // Akka's parser turns the blank lines of an empty multi-line list (`[\n  \n]`) into one whitespace element.
        var elements = v.GetArray().Where(e => e.IsObject() || !e.Values.All(x => x is HoconLiteral l && string.IsNullOrWhiteSpace(l.Value))).ToList();
        foreach (var (e, i) in elements.Select((e, i) => (e, i)))
        {
            if (!e.IsObject()) throw Bad($"{path}[{i}]", "expected an object");
            items.Add(new RlftConfig(new Config(new HoconRoot(e)), $"{Source} {path}[{i}]"));
        }
        return items;
    }

    /// <summary>The section at <paramref name="path"/> (empty when absent).</summary>
    public RlftConfig Section(string path) =>
        Value(path) is { } v
            ? v.IsObject() ? new RlftConfig(Config.GetConfig(path), Source) : throw Bad(path, "expected an object")
            : new RlftConfig(ConfigurationFactory.Empty, Source);

    public IReadOnlyCollection<string> Keys(string? path = null)
    {
        var v = path is null ? Config.Root : Value(path);
        return v is not null && v.IsObject() ? v.GetObject().Items.Keys.ToList() : [];
    }

    /// <summary>Fails on any key under <paramref name="path"/> that is not in <paramref name="allowed"/>, naming its full path.</summary>
    public void RejectUnknownKeys(string path, IReadOnlyCollection<string> allowed, string? displayPrefix = null)
    {
        foreach (var key in Keys(path.Length == 0 ? null : path))
            if (!allowed.Contains(key))
            {
                string full = string.Join('.', new[] { displayPrefix, path, key }.Where(s => !string.IsNullOrEmpty(s)));
                throw Bad(full, $"unknown key (expected one of: {string.Join(", ", allowed.OrderBy(k => k))})");
            }
    }

    // Akka's parser reports `[]` as neither a list nor an object, with no values.
    static bool IsEmptyList(HoconValue v) => !v.IsObject() && (v.Values.Count == 0 || (v.Values[0] is HoconArray { Count: 0 } && v.Values.Skip(1).All(x => x is HoconLiteral l && string.IsNullOrWhiteSpace(l.Value))));

    static string Describe(HoconValue v) => v.IsObject() ? "{...}" : v.IsArray() ? "[...]" : v.GetString();
}
