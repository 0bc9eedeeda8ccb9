namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// The Python <c>str</c> methods templates call (<c>content.strip()</c>, <c>.split('&lt;/think&gt;')</c>, <c>.startswith(…)</c>).
/// A str method that exists in Python but not here is an error naming it, never an undefined value.
/// </summary>
static class StringMethods
{
    static readonly HashSet<string> PythonOnly =
    [
        "casefold", "center", "encode", "expandtabs", "format", "format_map", "isdecimal", "isidentifier", "isnumeric",
        "isprintable", "istitle", "ljust", "maketrans", "rjust", "swapcase", "translate", "zfill", "rindex",
    ];

    /// <summary>The bound method <paramref name="name"/> of <paramref name="s"/>; null when str has no such attribute.</summary>
    public static PyCallable? Get(string s, string name)
    {
        Func<CallArgs, object?>? f = name switch
        {
            "strip" => a => PyText.Strip(s, Chars(a.Expect("strip", "chars"))),
            "lstrip" => a => PyText.LStrip(s, Chars(a.Expect("lstrip", "chars"))),
            "rstrip" => a => PyText.RStrip(s, Chars(a.Expect("rstrip", "chars"))),
            "split" => a => new PyList(PyText.Split(s, Sep(a.Expect("split", "sep", "maxsplit")), Int(a.Get(1, "maxsplit", -1L)))),
            "rsplit" => a => new PyList(PyText.RSplit(s, Sep(a.Expect("rsplit", "sep", "maxsplit")), Int(a.Get(1, "maxsplit", -1L)))),
            "splitlines" => a => new PyList(PyText.SplitLines(s, PyOps.Truthy(a.Expect("splitlines", "keepends").Get(0, "keepends", false)))),
            "startswith" => a => Affix(s, a.Expect("startswith", "prefix", "start", "end"), "startswith", (x, p) => x.StartsWith(p, StringComparison.Ordinal)),
            "endswith" => a => Affix(s, a.Expect("endswith", "suffix", "start", "end"), "endswith", (x, p) => x.EndsWith(p, StringComparison.Ordinal)),
            "replace" => a =>
            {
                a.Expect("replace", "old", "new", "count");
                string old = Str(a.Get(0, "old", null), "replace"), neu = Str(a.Get(1, "new", null), "replace");
                return Replace(s, old, neu, Int(a.Get(2, "count", -1L)));
            },
            "upper" => a => PyText.Upper(NoArgs(s, a, "upper")),
            "lower" => a => PyText.Lower(NoArgs(s, a, "lower")),
            "title" => a => PyText.Title(NoArgs(s, a, "title")),
            "capitalize" => a => PyText.Capitalize(NoArgs(s, a, "capitalize")),
            "isdigit" => a => NoArgs(s, a, "isdigit").Length > 0 && s.All(char.IsDigit),
            "isalpha" => a => NoArgs(s, a, "isalpha").Length > 0 && s.All(char.IsLetter),
            "isalnum" => a => NoArgs(s, a, "isalnum").Length > 0 && s.All(char.IsLetterOrDigit),
            "isspace" => a => NoArgs(s, a, "isspace").Length > 0 && s.All(PyText.IsSpace),
            "islower" => a => PyText.IsLower(NoArgs(s, a, "islower")),
            "isupper" => a => PyText.IsUpper(NoArgs(s, a, "isupper")),
            "isascii" => a => NoArgs(s, a, "isascii").All(c => c < 0x80),
            "find" => a => Find(s, Str(a.Expect("find", "sub").Get(0, "sub", null), "find"), last: false),
            "rfind" => a => Find(s, Str(a.Expect("rfind", "sub").Get(0, "sub", null), "rfind"), last: true),
            "index" => a =>
            {
                long i = Find(s, Str(a.Expect("index", "sub").Get(0, "sub", null), "index"), last: false);
                return i >= 0 ? i : throw PyException.Value("substring not found");
            },
            "count" => a =>
            {
                string sub = Str(a.Expect("count", "sub").Get(0, "sub", null), "count");
                return sub.Length == 0 ? PyText.Length(s) + 1L : (long)((s.Length - s.Replace(sub, "").Length) / sub.Length);
            },
            "join" => a =>
            {
                var items = PyOps.Iterate(a.Expect("join", "iterable").Get(0, "iterable", null));
                return string.Join(s, items.Select((x, i) => x as string ?? throw PyException.Type($"sequence item {i}: expected str instance, {PyRepr.TypeName(x)} found")));
            },
            "removeprefix" => a => { string p = Str(a.Expect("removeprefix", "prefix").Get(0, "prefix", null), "removeprefix"); return s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s; },
            "removesuffix" => a => { string p = Str(a.Expect("removesuffix", "suffix").Get(0, "suffix", null), "removesuffix"); return p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s; },
            "partition" => a => Partition(s, Str(a.Expect("partition", "sep").Get(0, "sep", null), "partition"), last: false),
            "rpartition" => a => Partition(s, Str(a.Expect("rpartition", "sep").Get(0, "sep", null), "rpartition"), last: true),
            _ => null,
        };
        if (f is not null) return new PyCallable(name, f);
        if (PythonOnly.Contains(name)) throw PyException.Unsupported($"the string method '{name}' is not supported");
        return null;
    }

    static string NoArgs(string s, CallArgs a, string name)
    {
        a.Expect(name);
        return s;
    }

    static string? Chars(CallArgs a) => a.Get(0, "chars", null) switch
    {
        null => null,
        string c => c,
        var x => throw PyException.Type($"strip arg must be None or str, not {PyRepr.TypeName(x)}"),
    };

    static string? Sep(CallArgs a) => a.Get(0, "sep", null) switch
    {
        null => null,
        string c => c,
        var x => throw PyException.Type($"must be str or None, not {PyRepr.TypeName(x)}"),
    };

    static long Int(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw PyException.Type($"'{PyRepr.TypeName(v)}' object cannot be interpreted as an integer"),
    };

    static string Str(object? v, string method) =>
        v as string ?? throw PyException.Type($"{method}() argument must be str, not {PyRepr.TypeName(v)}");

    static bool Affix(string s, CallArgs a, string name, Func<string, string, bool> test)
    {
        if (a.Has(1, "start")) throw PyException.Unsupported($"{name} with start/end is not supported");
        return a.Get(0, name == "startswith" ? "prefix" : "suffix", null) switch
        {
            string p => test(s, p),
            PyList { IsTuple: true } t => t.Items.Any(x => test(s, Str(x, name))),
            var x => throw PyException.Type($"{name} first arg must be str or a tuple of str, not {PyRepr.TypeName(x)}"),
        };
    }

    static string Replace(string s, string old, string neu, long count)
    {
        if (count < 0) return old.Length == 0 ? Interleave(s, neu, long.MaxValue) : s.Replace(old, neu, StringComparison.Ordinal);
        if (old.Length == 0) return Interleave(s, neu, count);
        var sb = new System.Text.StringBuilder();
        int start = 0;
        for (long n = 0; n < count; n++)
        {
            int k = s.IndexOf(old, start, StringComparison.Ordinal);
            if (k < 0) break;
            sb.Append(s, start, k - start).Append(neu);
            start = k + old.Length;
        }
        return sb.Append(s, start, s.Length - start).ToString();
    }

    /// <summary>''.replace with an empty old string inserts before every character and at the end.</summary>
    static string Interleave(string s, string neu, long count)
    {
        var sb = new System.Text.StringBuilder();
        long n = 0;
        foreach (var cp in PyText.CodePoints(s))
        {
            if (n++ < count) sb.Append(neu);
            sb.Append(cp);
        }
        if (n < count) sb.Append(neu);
        return sb.ToString();
    }

    static long Find(string s, string sub, bool last)
    {
        int k = last ? s.LastIndexOf(sub, StringComparison.Ordinal) : s.IndexOf(sub, StringComparison.Ordinal);
        return k < 0 ? -1 : PyText.Length(s[..k]);
    }

    static PyList Partition(string s, string sep, bool last)
    {
        if (sep.Length == 0) throw PyException.Value("empty separator");
        int k = last ? s.LastIndexOf(sep, StringComparison.Ordinal) : s.IndexOf(sep, StringComparison.Ordinal);
        if (k < 0) return last ? PyList.Tuple("", "", s) : PyList.Tuple(s, "", "");
        return PyList.Tuple(s[..k], sep, s[(k + sep.Length)..]);
    }
}
