namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// Which filters and tests exist. As in Jinja, an unknown name is a template error when the template is parsed
/// (even in a branch never taken); a name Jinja knows but RLFT does not implement is refused the same way.
/// </summary>
static class Builtins
{
    static readonly HashSet<string> JinjaFilters =
    [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat",
        "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join", "last", "length", "list",
        "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace", "reverse", "round", "safe",
        "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate",
        "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    ];

    static readonly HashSet<string> JinjaTests =
    [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
        "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none",
        "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper", "==", "!=", "<", "<=", ">", ">=",
    ];

    public static void CheckFilter(string name, int line)
    {
        if (Filters.Implemented.Contains(name)) return;
        throw new JinjaException(line, JinjaFilters.Contains(name)
            ? $"the '{name}' filter is not supported by RLFT's template engine"
            : $"No filter named '{name}'.");
    }

    public static void CheckTest(string name, int line)
    {
        if (Tests.Implemented.Contains(name)) return;
        throw new JinjaException(line, JinjaTests.Contains(name)
            ? $"the '{name}' test is not supported by RLFT's template engine"
            : $"No test named '{name}'.");
    }

    public static bool IsFilter(string name) => Filters.Implemented.Contains(name);
    public static bool IsTest(string name) => Tests.Implemented.Contains(name);
}
