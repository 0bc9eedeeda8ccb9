namespace Rlft.Policy.Chat.Jinja;

/// <summary>Jinja's built-in tests (<c>x is defined</c>, <c>x is string</c>, <c>n is divisibleby 3</c>…) with Python's meaning.</summary>
static class Tests
{
    public static readonly HashSet<string> Implemented =
    [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
        "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none",
        "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper", "==", "!=", "<", "<=", ">", ">=",
    ];

    public static bool Apply(string name, object? v, CallArgs a)
    {
        object? Arg() => a.Positional.Count > 0 ? a.Positional[0] : throw PyException.Type($"test '{name}' takes an argument");
        return name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "integer" => v is long,
            "float" => v is double,
            "number" => v is long or double or bool,
            "string" => v is string,
            "mapping" => v is PyDict,
            "iterable" => v is string or PyList or PyDict or Undefined,
            "sequence" => v is string or PyList or PyDict or Undefined,
            "callable" => v is PyCallable,
            "escaped" => false,
            "lower" => PyText.IsLower(PyRepr.Str(v)),
            "upper" => PyText.IsUpper(PyRepr.Str(v)),
            "odd" => Int(v, name) % 2 != 0,
            "even" => Int(v, name) % 2 == 0,
            "divisibleby" => Int(v, name) % Int(Arg(), name) == 0,
            "sameas" => SameAs(v, Arg()),
            "in" => PyOps.In(v, Arg()),
            "eq" or "equalto" or "==" => PyOps.Eq(v, Arg()),
            "ne" or "!=" => !PyOps.Eq(v, Arg()),
            "lt" or "lessthan" or "<" => PyOps.Compare(v, Arg(), "<") < 0,
            "le" or "<=" => PyOps.Compare(v, Arg(), "<=") <= 0,
            "gt" or "greaterthan" or ">" => PyOps.Compare(v, Arg(), ">") > 0,
            "ge" or ">=" => PyOps.Compare(v, Arg(), ">=") >= 0,
            "filter" => v is string f && Builtins.IsFilter(f),
            "test" => v is string t && Builtins.IsTest(t),
            _ => throw PyException.Unsupported($"the '{name}' test is not supported"),
        };
    }

    static long Int(object? v, string test) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        Undefined u => throw u.Fail(),
        _ => throw PyException.Type($"test '{test}' needs an integer, not {PyRepr.TypeName(v)}"),
    };

    /// <summary>Python's <c>is</c>: None, True and False are singletons; small ints and equal strings are not promised.</summary>
    static bool SameAs(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (bool x, bool y) => x == y,
        (long x, long y) => x == y && x is >= -5 and <= 256,
        _ => ReferenceEquals(a, b),
    };
}
