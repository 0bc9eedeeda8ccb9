namespace Rlft.Policy.Chat.Jinja;

// Template values are plain objects with Python's meaning: null is None, bool, long (int), double (float),
// string (str), PyList (list or tuple), PyDict (dict, insertion-ordered), Undefined, Namespace, PyCallable,
// LoopContext. Nothing else reaches the evaluator.

/// <summary>
/// Jinja's default <c>Undefined</c>: prints as "", is false, iterates as empty and has length 0; any attribute,
/// item, call or arithmetic on it fails with the message Jinja gives (<c>'x' is undefined</c>,
/// <c>'dict object' has no attribute 'role'</c>).
/// </summary>
sealed class Undefined
{
    readonly string? _hint;
    readonly object? _obj;
    readonly object? _name;
    readonly bool _hasObj;

    Undefined(string? hint, object? obj, object? name, bool hasObj) => (_hint, _obj, _name, _hasObj) = (hint, obj, name, hasObj);

    public static Undefined Named(string name) => new(null, null, name, false);
    public static Undefined Member(object? obj, object? name) => new(null, obj, name, true);
    public static Undefined WithHint(string hint) => new(hint, null, null, false);

    public string Message
    {
        get
        {
            if (_hint is not null) return _hint;
            if (!_hasObj) return _name is null ? "value is undefined" : $"{PyRepr.Repr(_name)} is undefined";
            if (_name is not string) return $"{PyRepr.TypeObject(_obj)} has no element {PyRepr.Repr(_name)}";
            return $"{PyRepr.Repr(PyRepr.TypeObject(_obj))} has no attribute {PyRepr.Repr(_name)}";
        }
    }

    public PyException Fail() => PyException.Undefined(Message);
}

/// <summary>A Python list, or a tuple when <see cref="IsTuple"/>.</summary>
sealed class PyList(List<object?> items, bool isTuple = false)
{
    public List<object?> Items { get; } = items;
    public bool IsTuple { get; } = isTuple;
    public int Count => Items.Count;
    public object? this[int i] => Items[i];

    public static PyList Tuple(params object?[] items) => new([.. items], true);
}

/// <summary>A Python dict: insertion-ordered, keys compared with Python equality (1 == 1.0 == True).</summary>
sealed class PyDict
{
    readonly Dictionary<object, int> _index = new(PyKeyComparer.Instance);
    readonly List<KeyValuePair<object?, object?>> _entries = [];

    public int Count => _entries.Count;
    public IEnumerable<object?> Keys => _entries.Select(e => e.Key);
    public IReadOnlyList<KeyValuePair<object?, object?>> Entries => _entries;

    public void Set(object? key, object? value)
    {
        var k = key ?? NoneKey.Instance;
        if (_index.TryGetValue(k, out int i)) _entries[i] = new(_entries[i].Key, value);
        else { _index[k] = _entries.Count; _entries.Add(new(key, value)); }
    }

    public bool TryGet(object? key, out object? value)
    {
        if (key is not (null or string or long or double or bool or PyList)) { value = null; return false; }
        if (_index.TryGetValue(key ?? NoneKey.Instance, out int i)) { value = _entries[i].Value; return true; }
        value = null;
        return false;
    }

    public bool ContainsKey(object? key) => TryGet(key, out _);

    sealed class NoneKey { public static readonly NoneKey Instance = new(); }

    sealed class PyKeyComparer : IEqualityComparer<object>
    {
        public static readonly PyKeyComparer Instance = new();
        public new bool Equals(object? a, object? b) =>
            a is NoneKey || b is NoneKey ? ReferenceEquals(a, b) : PyOps.Eq(a, b);
        public int GetHashCode(object o) => o switch
        {
            string s => s.GetHashCode(),
            bool b => b ? 1 : 0,
            long l => l.GetHashCode(),
            double d when d == Math.Floor(d) && Math.Abs(d) < 9.2e18 => ((long)d).GetHashCode(),
            double d => d.GetHashCode(),
            PyList l => l.Items.Aggregate(17, (h, x) => h * 31 + (x is null ? 0 : GetHashCode(x))),
            _ => 0,
        };
    }
}

/// <summary>Jinja's <c>namespace()</c>: the one object a template may assign attributes on.</summary>
sealed class Namespace
{
    public Dictionary<string, object?> Attributes { get; } = new();
}

/// <summary>Arguments of a call: positional values and keyword values in call order.</summary>
sealed record CallArgs(List<object?> Positional, List<KeyValuePair<string, object?>> Keywords)
{
    public static readonly CallArgs Empty = new([], []);

    /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>, else <paramref name="fallback"/>.</summary>
    public object? Get(int index, string name, object? fallback)
    {
        if (index < Positional.Count) return Positional[index];
        foreach (var kv in Keywords) if (kv.Key == name) return kv.Value;
        return fallback;
    }

    public bool Has(int index, string name) => index < Positional.Count || Keywords.Any(k => k.Key == name);

    /// <summary>Fails like Python when more positional arguments or unknown keywords are given than the callee takes.</summary>
    public CallArgs Expect(string callee, params string[] parameters)
    {
        if (Positional.Count > parameters.Length)
            throw PyException.Type($"{callee}() takes at most {parameters.Length} argument{(parameters.Length == 1 ? "" : "s")} ({Positional.Count} given)");
        foreach (var kv in Keywords)
            if (!parameters.Contains(kv.Key)) throw PyException.Type($"{callee}() got an unexpected keyword argument '{kv.Key}'");
        return this;
    }
}

/// <summary>A function value: a global, a bound method of a str/list/dict, a macro, or a loop helper.</summary>
class PyCallable(string name, Func<CallArgs, object?> invoke)
{
    public string Name { get; } = name;
    public virtual object? Invoke(CallArgs args) => invoke(args);
}

/// <summary>The <c>loop</c> variable inside a for block.</summary>
sealed class LoopContext(IReadOnlyList<object?> items)
{
    public int Index0 { get; set; }
    object? _lastChanged = Unset;
    static readonly object Unset = new();

    public object? Get(string name) => name switch
    {
        "index" => (long)(Index0 + 1),
        "index0" => (long)Index0,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "depth" => 1L,
        "depth0" => 0L,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : Undefined.WithHint("there is no previous item"),
        "nextitem" => Index0 + 1 < items.Count ? items[Index0 + 1] : Undefined.WithHint("there is no next item"),
        "cycle" => new PyCallable("cycle", a =>
            a.Positional.Count == 0 ? throw PyException.Type("no items for cycling given") : a.Positional[Index0 % a.Positional.Count]),
        "changed" => new PyCallable("changed", a =>
        {
            var value = new PyList(a.Positional);
            if (_lastChanged != Unset && PyOps.Eq(_lastChanged, value)) return false;
            _lastChanged = value;
            return true;
        }),
        _ => Undefined.Member(this, name),
    };
}
