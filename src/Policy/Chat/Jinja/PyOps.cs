namespace Rlft.Policy.Chat.Jinja;

/// <summary>Python's operators on template values: truth, equality, ordering, arithmetic, membership, iteration.</summary>
static class PyOps
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        PyList l => l.Count > 0,
        PyDict d => d.Count > 0,
        _ => true,
    };

    static bool IsNumber(object? v) => v is long or double or bool;
    static double AsDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => throw new InvalidOperationException() };
    static long AsLong(object? v) => v switch { long l => l, bool b => b ? 1 : 0, _ => throw new InvalidOperationException() };
    static bool IsInt(object? v) => v is long or bool;

    public static bool Eq(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b)) return IsInt(a) && IsInt(b) ? AsLong(a) == AsLong(b) : AsDouble(a) == AsDouble(b);
        if (a is string sa && b is string sb) return sa == sb;
        if (a is PyList la && b is PyList lb)
            return la.IsTuple == lb.IsTuple && la.Count == lb.Count && la.Items.Zip(lb.Items).All(p => Eq(p.First, p.Second));
        if (a is PyDict da && b is PyDict db)
            return da.Count == db.Count && da.Entries.All(e => db.TryGet(e.Key, out var v) && Eq(e.Value, v));
        return ReferenceEquals(a, b);
    }

    /// <summary>Python's ordering: numbers, strings by code point, lists lexicographically; anything else is a TypeError.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        if (a is Undefined ua) throw ua.Fail();
        if (b is Undefined ub) throw ub.Fail();
        if (IsNumber(a) && IsNumber(b)) return IsInt(a) && IsInt(b) ? AsLong(a).CompareTo(AsLong(b)) : AsDouble(a).CompareTo(AsDouble(b));
        if (a is string sa && b is string sb) return PyText.Compare(sa, sb);
        if (a is PyList la && b is PyList lb && la.IsTuple == lb.IsTuple)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
                if (!Eq(la[i], lb[i])) return Compare(la[i], lb[i], op);
            return la.Count.CompareTo(lb.Count);
        }
        throw PyException.Type($"'{op}' not supported between instances of '{PyRepr.TypeName(a)}' and '{PyRepr.TypeName(b)}'");
    }

    public static object? Binary(string op, object? a, object? b)
    {
        if (a is Undefined ua) throw ua.Fail();
        if (b is Undefined ub) throw ub.Fail();
        switch (op)
        {
            case "+":
                if (IsNumber(a) && IsNumber(b)) return IsInt(a) && IsInt(b) ? (object)checked(AsLong(a) + AsLong(b)) : AsDouble(a) + AsDouble(b);
                if (a is string sa && b is string sb) return sa + sb;
                if (a is PyList la && b is PyList lb && la.IsTuple == lb.IsTuple) return new PyList([.. la.Items, .. lb.Items], la.IsTuple);
                if (a is string) throw PyException.Type($"can only concatenate str (not \"{PyRepr.TypeName(b)}\") to str");
                if (a is PyList al) throw PyException.Type($"can only concatenate {PyRepr.TypeName(al)} (not \"{PyRepr.TypeName(b)}\") to {PyRepr.TypeName(al)}");
                break;
            case "-":
                if (IsNumber(a) && IsNumber(b)) return IsInt(a) && IsInt(b) ? (object)checked(AsLong(a) - AsLong(b)) : AsDouble(a) - AsDouble(b);
                break;
            case "*":
                if (IsNumber(a) && IsNumber(b)) return IsInt(a) && IsInt(b) ? (object)checked(AsLong(a) * AsLong(b)) : AsDouble(a) * AsDouble(b);
                if (a is string s1 && IsInt(b)) return Repeat(s1, AsLong(b));
                if (IsInt(a) && b is string s2) return Repeat(s2, AsLong(a));
                if (a is PyList l1 && IsInt(b)) return new PyList(Enumerable.Repeat(l1.Items, (int)Math.Max(0, AsLong(b))).SelectMany(x => x).ToList(), l1.IsTuple);
                break;
            case "/":
                if (IsNumber(a) && IsNumber(b))
                    return AsDouble(b) == 0 ? throw new PyException("ZeroDivisionError", "division by zero") : AsDouble(a) / AsDouble(b);
                break;
            case "//":
                if (IsNumber(a) && IsNumber(b))
                {
                    if (AsDouble(b) == 0) throw new PyException("ZeroDivisionError", "integer division or modulo by zero");
                    if (IsInt(a) && IsInt(b)) { long x = AsLong(a), y = AsLong(b); long q = x / y; return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q; }
                    return Math.Floor(AsDouble(a) / AsDouble(b));
                }
                break;
            case "%":
                if (a is string fmt) return PyFormat.Percent(fmt, b);
                if (IsNumber(a) && IsNumber(b))
                {
                    if (AsDouble(b) == 0) throw new PyException("ZeroDivisionError", "integer division or modulo by zero");
                    if (IsInt(a) && IsInt(b)) { long x = AsLong(a), y = AsLong(b); long r = x % y; return r != 0 && (r < 0) != (y < 0) ? r + y : r; }
                    double dx = AsDouble(a), dy = AsDouble(b), m = dx % dy;
                    return m != 0 && (m < 0) != (dy < 0) ? m + dy : m;
                }
                break;
            case "**":
                if (IsInt(a) && IsInt(b) && AsLong(b) >= 0)
                {
                    long result = 1, x = AsLong(a);
                    for (long i = 0; i < AsLong(b); i++) result = checked(result * x);
                    return result;
                }
                if (IsNumber(a) && IsNumber(b)) return Math.Pow(AsDouble(a), AsDouble(b));
                break;
        }
        throw PyException.Type($"unsupported operand type(s) for {op}: '{PyRepr.TypeName(a)}' and '{PyRepr.TypeName(b)}'");
    }

    static string Repeat(string s, long n) => n <= 0 ? "" : string.Concat(Enumerable.Repeat(s, (int)n));

    public static object? Negate(object? v) => v switch
    {
        Undefined u => throw u.Fail(),
        long l => (object)(-l),
        bool b => (object)(b ? -1L : 0L),
        double d => -d,
        _ => throw PyException.Type($"bad operand type for unary -: '{PyRepr.TypeName(v)}'"),
    };

    public static object? Plus(object? v) => v switch
    {
        Undefined u => throw u.Fail(),
        long or double => v,
        bool b => (object)(b ? 1L : 0L),
        _ => throw PyException.Type($"bad operand type for unary +: '{PyRepr.TypeName(v)}'"),
    };

    /// <summary><c>item in container</c>.</summary>
    public static bool In(object? item, object? container) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : item is Undefined u ? throw u.Fail()
            : throw PyException.Type($"'in <string>' requires string as left operand, not {PyRepr.TypeName(item)}"),
        PyList l => l.Items.Any(x => Eq(x, item)),
        PyDict d => d.ContainsKey(item),
        Undefined => false,
        _ => throw PyException.Type($"argument of type '{PyRepr.TypeName(container)}' is not iterable"),
    };

    /// <summary>iter(value) as a list: a string's characters, a dict's keys, a list's items; undefined is empty.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        PyList l => [.. l.Items],
        PyDict d => [.. d.Keys],
        string s => [.. PyText.CodePoints(s)],
        Undefined => [],
        _ => throw PyException.Type($"'{PyRepr.TypeName(v)}' object is not iterable"),
    };

    public static long Length(object? v) => v switch
    {
        string s => PyText.Length(s),
        PyList l => l.Count,
        PyDict d => d.Count,
        Undefined => 0,
        _ => throw PyException.Type($"object of type '{PyRepr.TypeName(v)}' has no len()"),
    };

    /// <summary>The indices a Python slice [start:stop:step] selects from a sequence of <paramref name="length"/>.</summary>
    public static IEnumerable<int> SliceIndices(int length, long? start, long? stop, long? step)
    {
        long st = step ?? 1;
        if (st == 0) throw PyException.Value("slice step cannot be zero");
        long lo, hi;
        if (st > 0)
        {
            lo = start is long a ? (a < 0 ? Math.Max(0, a + length) : Math.Min(a, length)) : 0;
            hi = stop is long b ? (b < 0 ? Math.Max(0, b + length) : Math.Min(b, length)) : length;
            for (long i = lo; i < hi; i += st) yield return (int)i;
        }
        else
        {
            lo = start is long a ? (a < 0 ? Math.Max(-1, a + length) : Math.Min(a, length - 1)) : length - 1;
            hi = stop is long b ? (b < 0 ? Math.Max(-1, b + length) : Math.Min(b, length - 1)) : -1;
            for (long i = lo; i > hi; i += st) yield return (int)i;
        }
    }

    /// <summary>Integer slice bounds: None or an int (bools count as ints).</summary>
    public static long? SliceBound(object? v) => v switch
    {
        null => null,
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw PyException.Type("slice indices must be integers or None or have an __index__ method"),
    };
}
