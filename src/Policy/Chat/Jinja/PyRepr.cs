using System.Globalization;
using System.Text;

namespace Rlft.Policy.Chat.Jinja;

/// <summary>Python's <c>str()</c> and <c>repr()</c> of template values, as Jinja prints them.</summary>
static class PyRepr
{
    /// <summary>What <c>{{ value }}</c> prints: str(value), and "" for undefined.</summary>
    public static string Str(object? value) => value switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(value),
    };

    public static string Repr(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => Float(d),
        string s => QuoteString(s),
        PyList { IsTuple: true } t => t.Count == 1 ? $"({Repr(t[0])},)" : "(" + string.Join(", ", t.Items.Select(Repr)) + ")",
        PyList l => "[" + string.Join(", ", l.Items.Select(Repr)) + "]",
        PyDict d => "{" + string.Join(", ", d.Entries.Select(e => Repr(e.Key) + ": " + Repr(e.Value))) + "}",
        Undefined => "Undefined",
        Namespace n => "<Namespace " + "{" + string.Join(", ", n.Attributes.Select(e => Repr(e.Key) + ": " + Repr(e.Value))) + "}>",
        PyCallable c => $"<function {c.Name}>",
        LoopContext => "<LoopContext>",
        _ => value.ToString() ?? "",
    };

    /// <summary>Python's repr(float): the shortest round-trip digits, scientific below 1e-4 and from 1e16.</summary>
    public static string Float(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        string sign = r.StartsWith('-') ? "-" : "";
        if (sign.Length > 0) r = r[1..];
        int exp = 0;
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0) { exp = int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture); r = r[..e]; }
        int dot = r.IndexOf('.');
        string intPart = dot >= 0 ? r[..dot] : r, frac = dot >= 0 ? r[(dot + 1)..] : "";
        string all = intPart + frac;
        int lead = all.Length - all.TrimStart('0').Length;
        string digits = all.TrimStart('0').TrimEnd('0');
        if (digits.Length == 0) return sign + "0.0";
        int decpt = intPart.Length + exp - lead;   // value = 0.digits × 10^decpt
        if (decpt > -4 && decpt <= 16)
        {
            if (decpt <= 0) return sign + "0." + new string('0', -decpt) + digits;
            if (decpt >= digits.Length) return sign + digits + new string('0', decpt - digits.Length) + ".0";
            return sign + digits[..decpt] + "." + digits[decpt..];
        }
        int x = decpt - 1;
        string mantissa = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
        return sign + mantissa + "e" + (x < 0 ? "-" : "+") + Math.Abs(x).ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>repr(str): single quotes unless the text holds ' and no ", with Python's escapes.</summary>
    public static string QuoteString(string s)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(q);
        foreach (var cp in PyText.CodePoints(s))
        {
            int v = cp.Length == 2 ? char.ConvertToUtf32(cp[0], cp[1]) : cp[0];
            if (cp[0] == q || cp == "\\") sb.Append('\\').Append(cp);
            else if (cp == "\n") sb.Append("\\n");
            else if (cp == "\r") sb.Append("\\r");
            else if (cp == "\t") sb.Append("\\t");
            else if (v < 0x20 || v == 0x7F) sb.Append($"\\x{v:x2}");
            else if (v > 0x7F && !IsPrintable(cp)) sb.Append(v <= 0xFF ? $"\\x{v:x2}" : v <= 0xFFFF ? $"\\u{v:x4}" : $"\\U{v:x8}");
            else sb.Append(cp);
        }
        return sb.Append(q).ToString();
    }

    static bool IsPrintable(string cp)
    {
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp, 0);
        return cat is not (UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);
    }

    /// <summary>type(value).__name__.</summary>
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        PyList { IsTuple: true } => "tuple",
        PyList => "list",
        PyDict => "dict",
        Undefined => "Undefined",
        Namespace => "Namespace",
        PyCallable => "function",
        LoopContext => "LoopContext",
        _ => value.GetType().Name,
    };

    /// <summary>Jinja's object_type_repr: "None", or "dict object", "list object"…</summary>
    public static string TypeObject(object? value) => value switch
    {
        null => "None",
        Undefined => "jinja2.runtime.Undefined object",
        Namespace => "jinja2.utils.Namespace object",
        LoopContext => "jinja2.runtime.LoopContext object",
        _ => TypeName(value) + " object",
    };
}
