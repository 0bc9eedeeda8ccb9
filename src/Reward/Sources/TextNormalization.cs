using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Rlft.Reward.Sources;

/// <summary>
/// The normalisations answer matching claims, and nothing more: surrounding and repeated whitespace,
/// letter case, and number formats ("1,000" = "1000" = "1000.0" = "+1000"; "-0" = "0").
/// </summary>
internal static partial class TextNormalization
{
    // A number not glued to a word: optional sign, digits with optional thousands groups, optional fraction.
    [GeneratedRegex(@"(?<![\w.,])[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|[.,]\d)", RegexOptions.CultureInvariant)]
    private static partial Regex NumberPattern();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    /// <summary>Trim, collapse whitespace to one space, lower-case (unless asked not to), canonical numbers.</summary>
    public static string Normalize(string text, bool caseSensitive = false)
    {
        string s = Whitespace().Replace(text.Trim(), " ");
        if (!caseSensitive) s = s.ToLowerInvariant();
        return NumberPattern().Replace(s, m => TryParseNumber(m.Value, out var d) ? Canonical(d) : m.Value);
    }

    /// <summary>Parses "1,000", "+3", "1000.0", "-2.50"; false for anything else.</summary>
    public static bool TryParseNumber(string text, out decimal value)
    {
        string t = text.Trim();
        var m = NumberPattern().Match(t);
        value = 0;
        if (!m.Success || m.Length != t.Length) return false;
        return decimal.TryParse(t.Replace(",", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>The numbers in <paramref name="text"/>, in order (thousands separators understood).</summary>
    public static IReadOnlyList<decimal> Numbers(string text) =>
        NumberPattern().Matches(text).Select(m => TryParseNumber(m.Value, out var d) ? (decimal?)d : null).OfType<decimal>().ToList();

    /// <summary>One spelling per value: no sign for zero or positives, no trailing zeros, no separators.</summary>
    public static string Canonical(decimal d)
    {
        if (d == 0) return "0";
        string s = d.ToString("0.#############################", CultureInfo.InvariantCulture);
        return s;
    }

    /// <summary>Words (letters/digits runs), lower-cased; what the repetition penalty counts.</summary>
    public static IReadOnlyList<string> Words(string text)
    {
        var words = new List<string>();
        var sb = new StringBuilder();
        foreach (char c in text)
        {
            if (char.IsLetterOrDigit(c)) sb.Append(char.ToLowerInvariant(c));
            else if (sb.Length > 0) { words.Add(sb.ToString()); sb.Clear(); }
        }
        if (sb.Length > 0) words.Add(sb.ToString());
        return words;
    }
}
