using System.Globalization;
using System.Text;

namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// Python <c>str</c> semantics on .NET strings: a Python string is a sequence of code points, so length, indexing
/// and slicing count code points (an emoji is one character), and whitespace is what <c>str.isspace</c> says.
/// </summary>
static class PyText
{
    /// <summary>Python's whitespace: .NET's plus the information separators U+001C–U+001F.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>The code points of <paramref name="s"/> as strings (a lone surrogate stays one element).</summary>
    public static string[] CodePoints(string s)
    {
        if (!HasSurrogates(s)) return s.Select(c => c.ToString()).ToArray();
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { list.Add(s.Substring(i, 2)); i++; }
            else list.Add(s[i].ToString());
        }
        return list.ToArray();
    }

    public static int Length(string s) => HasSurrogates(s) ? CodePoints(s).Length : s.Length;

    /// <summary>s[index] with Python's negative indices; null when out of range.</summary>
    public static string? At(string s, long index)
    {
        if (!HasSurrogates(s))
        {
            long i = index < 0 ? index + s.Length : index;
            return i >= 0 && i < s.Length ? s[(int)i].ToString() : null;
        }
        var cps = CodePoints(s);
        long j = index < 0 ? index + cps.Length : index;
        return j >= 0 && j < cps.Length ? cps[j] : null;
    }

    public static string Slice(string s, long? start, long? stop, long? step)
    {
        var cps = CodePoints(s);
        var sb = new StringBuilder();
        foreach (int i in PyOps.SliceIndices(cps.Length, start, stop, step)) sb.Append(cps[i]);
        return sb.ToString();
    }

    /// <summary>Compares by code point (UTF-16 ordinal order differs above the surrogate range).</summary>
    public static int Compare(string a, string b)
    {
        if (!HasSurrogates(a) && !HasSurrogates(b)) return Math.Sign(string.CompareOrdinal(a, b));
        var x = a.EnumerateRunes().GetEnumerator();
        var y = b.EnumerateRunes().GetEnumerator();
        while (true)
        {
            bool hx = x.MoveNext(), hy = y.MoveNext();
            if (!hx || !hy) return hx ? 1 : hy ? -1 : 0;
            int c = x.Current.Value.CompareTo(y.Current.Value);
            if (c != 0) return Math.Sign(c);
        }
    }

    public static string Strip(string s, string? chars = null) => LStrip(RStrip(s, chars), chars);

    public static string LStrip(string s, string? chars = null)
    {
        if (chars is null) { int i = 0; while (i < s.Length && IsSpace(s[i])) i++; return s[i..]; }
        var set = new HashSet<string>(CodePoints(chars));
        var cps = CodePoints(s);
        int k = 0;
        while (k < cps.Length && set.Contains(cps[k])) k++;
        return string.Concat(cps.Skip(k));
    }

    public static string RStrip(string s, string? chars = null)
    {
        if (chars is null) { int i = s.Length; while (i > 0 && IsSpace(s[i - 1])) i--; return s[..i]; }
        var set = new HashSet<string>(CodePoints(chars));
        var cps = CodePoints(s);
        int k = cps.Length;
        while (k > 0 && set.Contains(cps[k - 1])) k--;
        return string.Concat(cps.Take(k));
    }

    /// <summary>str.split(sep, maxsplit): with no separator, runs of whitespace split and ends are dropped.</summary>
    public static List<object?> Split(string s, string? sep, long maxSplit)
    {
        var parts = new List<object?>();
        if (sep is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && IsSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxSplit >= 0 && parts.Count == maxSplit) { parts.Add(RStrip(s[i..])); break; }
                int j = i;
                while (j < s.Length && !IsSpace(s[j])) j++;
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        if (sep.Length == 0) throw PyException.Value("empty separator");
        int start = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int k = s.IndexOf(sep, start, StringComparison.Ordinal);
            if (k < 0) break;
            parts.Add(s[start..k]);
            start = k + sep.Length;
        }
        parts.Add(s[start..]);
        return parts;
    }

    /// <summary>str.rsplit(sep, maxsplit).</summary>
    public static List<object?> RSplit(string s, string? sep, long maxSplit)
    {
        if (maxSplit < 0) return Split(s, sep, -1);
        var parts = new List<object?>();
        if (sep is null)
        {
            int i = s.Length;
            while (true)
            {
                while (i > 0 && IsSpace(s[i - 1])) i--;
                if (i == 0) break;
                if (parts.Count == maxSplit) { parts.Add(LStrip(s[..i])); break; }
                int j = i;
                while (j > 0 && !IsSpace(s[j - 1])) j--;
                parts.Add(s[j..i]);
                i = j;
            }
            parts.Reverse();
            return parts;
        }
        if (sep.Length == 0) throw PyException.Value("empty separator");
        int end = s.Length;
        while (parts.Count < maxSplit)
        {
            int k = end - sep.Length < 0 ? -1 : s.LastIndexOf(sep, end - 1, end, StringComparison.Ordinal);
            if (k < 0 || k + sep.Length > end) break;
            parts.Add(s[(k + sep.Length)..end]);
            end = k;
        }
        parts.Add(s[..end]);
        parts.Reverse();
        return parts;
    }

    /// <summary>str.splitlines(): every line boundary Python knows; no trailing empty line.</summary>
    public static List<object?> SplitLines(string s, bool keepEnds = false)
    {
        var lines = new List<object?>();
        int start = 0, i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            int eol = c == '\r' && i + 1 < s.Length && s[i + 1] == '\n' ? 2
                : c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029' ? 1 : 0;
            if (eol == 0) { i++; continue; }
            lines.Add(keepEnds ? s[start..(i + eol)] : s[start..i]);
            i += eol;
            start = i;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    public static string Upper(string s) => s.ToUpperInvariant().Replace("ß", "SS");
    public static string Lower(string s) => s.ToLowerInvariant();

    /// <summary>str.capitalize(): first character upper, the rest lower.</summary>
    public static string Capitalize(string s) => s.Length == 0 ? s : Upper(CodePoints(s)[0]) + Lower(string.Concat(CodePoints(s).Skip(1)));

    /// <summary>str.title(): a letter after a cased letter goes lower, any other letter upper.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (var cp in CodePoints(s))
        {
            bool cased = cp.Length > 0 && IsCased(cp);
            sb.Append(cased ? previousCased ? Lower(cp) : Upper(cp) : cp);
            previousCased = cased;
        }
        return sb.ToString();
    }

    static bool IsCased(string cp)
    {
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp, 0);
        return cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;
    }

    /// <summary>True when the string has a cased character and all cased characters are lower (str.islower).</summary>
    public static bool IsLower(string s) => s.Any(c => char.IsLetter(c) && char.ToUpperInvariant(c) != char.ToLowerInvariant(c)) && !s.Any(char.IsUpper);
    public static bool IsUpper(string s) => s.Any(c => char.IsLetter(c) && char.ToUpperInvariant(c) != char.ToLowerInvariant(c)) && !s.Any(char.IsLower);

    /// <summary>
    /// A string literal's value as Jinja computes it: <c>value.encode("ascii", "backslashreplace").decode("unicode-escape")</c>,
    /// so Python's escapes (\n, \t, \\, \', \xhh, \uXXXX, \UXXXXXXXX, octal) work and unknown escapes keep their backslash.
    /// </summary>
    public static string Unescape(string body, int line)
    {
        // backslashreplace: every non-ASCII character becomes its \x, \u or \U escape first.
        var ascii = new StringBuilder(body.Length);
        foreach (var rune in body.EnumerateRunes())
        {
            int v = rune.Value;
            if (v < 0x80) ascii.Append((char)v);
            else if (v <= 0xFF) ascii.Append($"\\x{v:x2}");
            else if (v <= 0xFFFF) ascii.Append($"\\u{v:x4}");
            else ascii.Append($"\\U{v:x8}");
        }
        string s = ascii.ToString();
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c != '\\') { sb.Append(c); continue; }
            if (i + 1 >= s.Length) throw new JinjaException(line, "string literal ends with a backslash");
            char e = s[++i];
            switch (e)
            {
                case '\n': break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case >= '0' and <= '7':
                {
                    int n = 0, k = 0;
                    while (k < 3 && i < s.Length && s[i] is >= '0' and <= '7') { n = n * 8 + (s[i] - '0'); i++; k++; }
                    i--;
                    sb.Append(char.ConvertFromUtf32(n));
                    break;
                }
                case 'x' or 'u' or 'U':
                {
                    int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    string hex = i + digits < s.Length ? s.Substring(i + 1, digits) : "";
                    if (hex.Length != digits || !int.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v) || v > 0x10FFFF)
                        throw new JinjaException(line, $"truncated \\{e} escape in a string literal");
                    sb.Append(v is >= 0xD800 and <= 0xDFFF ? ((char)v).ToString() : char.ConvertFromUtf32(v));
                    i += digits;
                    break;
                }
                case 'N': throw new JinjaException(line, "\\N{...} escapes in string literals are not supported");
                default: sb.Append('\\').Append(e); break;
            }
        }
        return sb.ToString();
    }
}
