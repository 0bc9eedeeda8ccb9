using System.Globalization;
using System.Text.RegularExpressions;

namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// Jinja's built-in filters with their Python behaviour (argument names, defaults, undefined handling), plus
/// transformers' <c>tojson</c>. Each is a function of the value and the call's arguments.
/// </summary>
static partial class Filters
{
    public static readonly HashSet<string> Implemented =
    [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "format",
        "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim",
        "unique", "upper", "wordcount",
    ];

    public static object? Apply(string name, object? v, CallArgs a) => name switch
    {
        "default" or "d" => v is Undefined || (PyOps.Truthy(a.Expect(name, "default_value", "boolean").Get(1, "boolean", false)) && !PyOps.Truthy(v))
            ? a.Get(0, "default_value", "") : v,
        "length" or "count" => PyOps.Length(v),
        "string" => PyRepr.Str(v),
        "safe" => PyRepr.Str(v),
        "list" => new PyList(PyOps.Iterate(v)),
        "upper" => PyText.Upper(PyRepr.Str(v)),
        "lower" => PyText.Lower(PyRepr.Str(v)),
        "capitalize" => PyText.Capitalize(PyRepr.Str(v)),
        "title" => Title(PyRepr.Str(v)),
        "trim" => PyText.Strip(PyRepr.Str(v), a.Expect("trim", "chars").Get(0, "chars", null) is string c ? c : null),
        "replace" => Replace(v, a.Expect("replace", "old", "new", "count")),
        "first" => PyOps.Iterate(v) is { Count: > 0 } f ? f[0] : Undefined.WithHint("No first item, sequence was empty."),
        "last" => PyOps.Iterate(v) is { Count: > 0 } l ? l[^1] : Undefined.WithHint("No last item, sequence was empty."),
        "join" => Join(v, a.Expect("join", "d", "attribute")),
        "int" => Int(v, a.Expect("int", "default", "base")),
        "float" => Float(v, a.Expect("float", "default").Get(0, "default", 0.0)),
        "abs" => v switch { long l => (object)Math.Abs(l), double d => Math.Abs(d), bool b => b ? 1L : 0L, _ => throw PyException.Type($"bad operand type for abs(): '{PyRepr.TypeName(v)}'") },
        "round" => Round(v, a.Expect("round", "precision", "method")),
        "tojson" => ToJson(v, a.Expect("tojson", "ensure_ascii", "indent", "separators", "sort_keys")),
        "items" => v switch
        {
            Undefined => new PyList([]),
            PyDict d => new PyList(d.Entries.Select(e => (object?)PyList.Tuple(e.Key, e.Value)).ToList()),
            _ => throw PyException.Type("Can only get item pairs from a mapping."),
        },
        "dictsort" => DictSort(v, a.Expect("dictsort", "case_sensitive", "by", "reverse")),
        "sort" => Sort(v, a.Expect("sort", "reverse", "case_sensitive", "attribute")),
        "unique" => Unique(v, a.Expect("unique", "case_sensitive", "attribute")),
        "reverse" => v is string s ? string.Concat(PyText.CodePoints(s).Reverse()) : new PyList(Enumerable.Reverse(PyOps.Iterate(v)).ToList()),
        "sum" => Sum(v, a.Expect("sum", "attribute", "start")),
        "min" => MinMax(v, a.Expect("min", "case_sensitive", "attribute"), -1),
        "max" => MinMax(v, a.Expect("max", "case_sensitive", "attribute"), 1),
        "map" => Map(v, a),
        "select" => Select(v, a, attribute: false, keep: true),
        "reject" => Select(v, a, attribute: false, keep: false),
        "selectattr" => Select(v, a, attribute: true, keep: true),
        "rejectattr" => Select(v, a, attribute: true, keep: false),
        "attr" => Access.GetAttr(v, a.Expect("attr", "name").Get(0, "name", null) as string ?? throw PyException.Type("attribute name must be a string")),
        "indent" => Indent(PyRepr.Str(v), a.Expect("indent", "width", "first", "blank")),
        "wordcount" => (long)WordRe().Matches(PyRepr.Str(v)).Count,
        "e" or "escape" => PyRepr.Str(v).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("'", "&#39;").Replace("\"", "&#34;"),
        "format" => PyFormat.Percent(PyRepr.Str(v), a.Keywords.Count > 0 ? throw PyException.Unsupported("format with keyword arguments is not supported") : new PyList(a.Positional, true)),
        _ => throw PyException.Unsupported($"the '{name}' filter is not supported"),
    };

    [GeneratedRegex(@"\w+")]
    private static partial Regex WordRe();

    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginningSplitRe();

    /// <summary>Jinja's title filter: capitalise after whitespace, '-', and opening brackets.</summary>
    static string Title(string s) => string.Concat(WordBeginningSplitRe().Split(s).Where(x => x.Length > 0)
        .Select(x => PyText.Upper(PyText.CodePoints(x)[0]) + PyText.Lower(string.Concat(PyText.CodePoints(x).Skip(1)))));

    static object? Replace(object? v, CallArgs a)
    {
        string s = PyRepr.Str(v);
        var method = StringMethods.Get(s, "replace")!;
        var count = a.Get(2, "count", null);
        List<object?> args = [PyRepr.Str(a.Get(0, "old", "")), PyRepr.Str(a.Get(1, "new", ""))];
        if (count is not null) args.Add(count);
        return method.Invoke(new CallArgs(args, []));
    }

    static string Join(object? v, CallArgs a)
    {
        var items = PyOps.Iterate(v);
        if (a.Get(1, "attribute", null) is { } attr) items = items.Select(x => AttrGetter(x, attr, null)).ToList();
        return string.Join(PyRepr.Str(a.Get(0, "d", "")), items.Select(PyRepr.Str));
    }

    static object? Int(object? v, CallArgs a)
    {
        object? fallback = a.Get(0, "default", 0L);
        long numberBase = a.Get(1, "base", 10L) is long b ? b : 10;
        switch (v)
        {
            case long l: return l;
            case bool b2: return b2 ? 1L : 0L;
            case double d when double.IsFinite(d): return (long)Math.Truncate(d);
            case string s:
                string t = PyText.Strip(s).Replace("_", "");
                try { if (t.Length > 0) return Convert.ToInt64(t, (int)numberBase); }
                catch (Exception e) when (e is FormatException or ArgumentException or OverflowException) { }
                return TryParseFloat(s, out double f) && double.IsFinite(f) ? (long)Math.Truncate(f) : fallback;
            default: return fallback;
        }
    }

    static object? Float(object? v, object? fallback) => v switch
    {
        double d => d,
        long l => (double)l,
        bool b => b ? 1.0 : 0.0,
        string s when TryParseFloat(s, out double f) => f,
        _ => fallback,
    };

    static bool TryParseFloat(string s, out double value)
    {
        string t = PyText.Strip(s).ToLowerInvariant();
        value = t switch { "inf" or "+inf" or "infinity" or "+infinity" => double.PositiveInfinity, "-inf" or "-infinity" => double.NegativeInfinity, "nan" or "+nan" or "-nan" => double.NaN, _ => 0 };
        if (value != 0 || double.IsNaN(value)) return true;
        return t.Length > 0 && !t.Contains(',') && double.TryParse(t.Replace("_", ""), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    static object? Round(object? v, CallArgs a)
    {
        long precision = a.Get(0, "precision", 0L) is long p ? p : 0;
        string method = a.Get(1, "method", "common") as string ?? "common";
        if (v is long l && method == "common") return l;
        double d = v switch { double x => x, long x => x, bool x => x ? 1 : 0, _ => throw PyException.Type($"type {PyRepr.TypeName(v)} doesn't define __round__ method") };
        double scale = Math.Pow(10, precision);
        return method switch
        {
            "common" => Math.Round(d, (int)Math.Clamp(precision, 0, 15), MidpointRounding.ToEven),
            "ceil" => Math.Ceiling(d * scale) / scale,
            "floor" => Math.Floor(d * scale) / scale,
            _ => throw PyException.Runtime("method must be common, ceil or floor"),
        };
    }

    static string ToJson(object? v, CallArgs a)
    {
        bool ascii = PyOps.Truthy(a.Get(0, "ensure_ascii", false));
        string? indent = a.Get(1, "indent", null) switch
        {
            null => null,
            long n => new string(' ', (int)Math.Max(0, n)),
            string s => s,
            var x => throw PyException.Type($"indent must be an int or a string, not {PyRepr.TypeName(x)}"),
        };
        string? itemSep = null, keySep = null;
        if (a.Get(2, "separators", null) is PyList { Count: 2 } seps) { itemSep = PyRepr.Str(seps[0]); keySep = PyRepr.Str(seps[1]); }
        return PyJson.Dumps(v, ascii, indent, itemSep, keySep, PyOps.Truthy(a.Get(3, "sort_keys", false)));
    }

    /// <summary>Jinja's attribute getter: "a.b.0" looks up each part as an item (digits as integers).</summary>
    static object? AttrGetter(object? item, object? attribute, object? fallback)
    {
        var parts = attribute is string s ? s.Split('.').Select(p => p.Length > 0 && p.All(char.IsAsciiDigit) ? (object?)long.Parse(p, CultureInfo.InvariantCulture) : p) : [attribute];
        foreach (var part in parts)
        {
            item = Access.GetItem(item, part);
            if (fallback is not null && item is Undefined) return fallback;
        }
        return item;
    }

    static object? IgnoreCase(object? v, bool caseSensitive) => !caseSensitive && v is string s ? PyText.Lower(s) : v;

    static readonly Comparer<object?> PyComparer = Comparer<object?>.Create((x, y) => PyOps.Compare(x, y, "<"));

    static PyList DictSort(object? v, CallArgs a)
    {
        if (v is not PyDict d) throw PyException.Type("You can only sort by either \"key\" or \"value\"");
        bool cs = PyOps.Truthy(a.Get(0, "case_sensitive", false));
        string by = a.Get(1, "by", "key") as string ?? "key";
        int pos = by == "key" ? 0 : by == "value" ? 1 : throw PyException.Runtime("You can only sort by either \"key\" or \"value\"");
        var items = d.Entries.Select(e => PyList.Tuple(e.Key, e.Value));
        var sorted = PyOps.Truthy(a.Get(2, "reverse", false))
            ? items.OrderByDescending(t => IgnoreCase(t[pos], cs), PyComparer)
            : items.OrderBy(t => IgnoreCase(t[pos], cs), PyComparer);
        return new PyList(sorted.Cast<object?>().ToList());
    }

    static PyList Sort(object? v, CallArgs a)
    {
        bool reverse = PyOps.Truthy(a.Get(0, "reverse", false)), cs = PyOps.Truthy(a.Get(1, "case_sensitive", false));
        var attribute = a.Get(2, "attribute", null);
        Func<object?, object?> key = x => IgnoreCase(attribute is null ? x : AttrGetter(x, attribute, null), cs);
        var items = PyOps.Iterate(v);
        return new PyList((reverse ? items.OrderByDescending(key, PyComparer) : items.OrderBy(key, PyComparer)).ToList());
    }

    static PyList Unique(object? v, CallArgs a)
    {
        bool cs = PyOps.Truthy(a.Get(0, "case_sensitive", false));
        var attribute = a.Get(1, "attribute", null);
        var seen = new PyDict();
        var result = new List<object?>();
        foreach (var x in PyOps.Iterate(v))
        {
            var key = IgnoreCase(attribute is null ? x : AttrGetter(x, attribute, null), cs);
            if (seen.ContainsKey(key)) continue;
            seen.Set(key, true);
            result.Add(x);
        }
        return new PyList(result);
    }

    static object? Sum(object? v, CallArgs a)
    {
        var attribute = a.Get(0, "attribute", null);
        object? total = a.Get(1, "start", 0L);
        foreach (var x in PyOps.Iterate(v)) total = PyOps.Binary("+", total, attribute is null ? x : AttrGetter(x, attribute, null));
        return total;
    }

    static object? MinMax(object? v, CallArgs a, int sign)
    {
        bool cs = PyOps.Truthy(a.Get(0, "case_sensitive", false));
        var attribute = a.Get(1, "attribute", null);
        var items = PyOps.Iterate(v);
        if (items.Count == 0) return Undefined.WithHint(sign < 0 ? "No smallest item, sequence was empty." : "No largest item, sequence was empty.");
        Func<object?, object?> key = x => IgnoreCase(attribute is null ? x : AttrGetter(x, attribute, null), cs);
        var best = items[0];
        foreach (var x in items.Skip(1))
            if (PyOps.Compare(key(x), key(best), "<") * sign > 0) best = x;
        return best;
    }

    static PyList Map(object? v, CallArgs a)
    {
        var items = PyOps.Iterate(v);
        if (a.Positional.Count == 0 && a.Keywords.Any(k => k.Key == "attribute"))
        {
            var attribute = a.Get(99, "attribute", null);
            var fallback = a.Get(99, "default", null);
            return new PyList(items.Select(x => AttrGetter(x, attribute, fallback)).ToList());
        }
        if (a.Positional.Count == 0 || a.Positional[0] is not string filter) throw PyException.Runtime("map requires a filter argument");
        if (!Builtins.IsFilter(filter)) throw PyException.Runtime($"No filter named '{filter}'.");
        var rest = new CallArgs(a.Positional.Skip(1).ToList(), a.Keywords);
        return new PyList(items.Select(x => Apply(filter, x, rest)).ToList());
    }

    static PyList Select(object? v, CallArgs a, bool attribute, bool keep)
    {
        int offset = attribute ? 1 : 0;
        var attr = attribute ? a.Get(0, "attr", null) : null;
        Func<object?, bool> pass;
        if (a.Positional.Count > offset)
        {
            string test = a.Positional[offset] as string ?? throw PyException.Type("test name must be a string");
            if (!Builtins.IsTest(test)) throw PyException.Runtime($"No test named '{test}'.");
            var rest = new CallArgs(a.Positional.Skip(offset + 1).ToList(), a.Keywords);
            pass = x => Tests.Apply(test, x, rest);
        }
        else pass = PyOps.Truthy;
        return new PyList(PyOps.Iterate(v).Where(x => pass(attribute ? AttrGetter(x, attr, null) : x) == keep).ToList());
    }

    static string Indent(string s, CallArgs a)
    {
        string indention = a.Get(0, "width", 4L) switch { string w => w, long n => new string(' ', (int)n), var x => throw PyException.Type($"width must be an int or a string, not {PyRepr.TypeName(x)}") };
        bool first = PyOps.Truthy(a.Get(1, "first", false)), blank = PyOps.Truthy(a.Get(2, "blank", false));
        s += "\n";   // Jinja's quirk so splitlines keeps a trailing empty line
        var lines = PyText.SplitLines(s).Cast<string>().ToList();
        string rv;
        if (blank) rv = string.Join("\n" + indention, lines);
        else
        {
            rv = lines[0];
            if (lines.Count > 1) rv += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? indention + l : l));
        }
        return first ? indention + rv : rv;
    }
}
