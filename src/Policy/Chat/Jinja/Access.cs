namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// Attribute and item access as transformers' <c>ImmutableSandboxedEnvironment</c> does it. <c>x.name</c> tries
/// the Python attribute first (a dict's <c>items</c> is the method), then <c>x['name']</c>; <c>x[key]</c> tries the
/// item first, then the attribute. What neither finds is undefined; on undefined itself both fail. Methods that
/// mutate a list or dict are unsafe in the sandbox; Python methods RLFT does not implement are an error, never
/// silently undefined.
/// </summary>
static class Access
{
    public static object? GetAttr(object? obj, string name)
    {
        if (obj is Undefined u) throw u.Fail();
        if (TryAttribute(obj, name, out var value)) return value;
        if (TryItem(obj, name, out value)) return value;
        return Undefined.Member(obj, name);
    }

    public static object? GetItem(object? obj, object? key)
    {
        if (obj is Undefined u) throw u.Fail();
        if (TryItem(obj, key, out var value)) return value;
        if (key is string name && TryAttribute(obj, name, out value)) return value;
        return Undefined.Member(obj, key);
    }

    static bool TryItem(object? obj, object? key, out object? value)
    {
        value = null;
        switch (obj)
        {
            case PyDict d:
                return d.TryGet(key, out value);
            case PyList l when key is long or bool:
            {
                long i = key is bool b ? (b ? 1 : 0) : (long)key;
                if (i < 0) i += l.Count;
                if (i < 0 || i >= l.Count) return false;
                value = l[(int)i];
                return true;
            }
            case PyList l when key is SliceValue s:
                value = new PyList(PyOps.SliceIndices(l.Count, s.Start, s.Stop, s.Step).Select(i => l[i]).ToList(), l.IsTuple);
                return true;
            case string str when key is long or bool:
                value = PyText.At(str, key is bool b2 ? (b2 ? 1 : 0) : (long)key);
                return value is not null;
            case string str when key is SliceValue s:
                value = PyText.Slice(str, s.Start, s.Stop, s.Step);
                return true;
            default:
                return false;
        }
    }

    static bool TryAttribute(object? obj, string name, out object? value)
    {
        value = null;
        if (name.StartsWith('_')) return false;
        switch (obj)
        {
            case string s:
                value = StringMethods.Get(s, name);
                return value is not null;
            case PyDict d:
                value = DictMethod(d, name);
                return value is not null;
            case PyList l:
                value = ListMethod(l, name);
                return value is not null;
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out value);
            case LoopContext loop:
                value = loop.Get(name);
                return value is not Undefined || name is "previtem" or "nextitem";
            case long or double or bool when name is "real" or "imag" or "numerator" or "denominator" or "conjugate" or "bit_length" or "is_integer" or "hex":
                throw PyException.Unsupported($"the number attribute '{name}' is not supported");
            default:
                return false;
        }
    }

    static object? DictMethod(PyDict d, string name) => name switch
    {
        "items" => new PyCallable("items", a => { a.Expect("items"); return new PyList(d.Entries.Select(e => (object?)PyList.Tuple(e.Key, e.Value)).ToList()); }),
        "keys" => new PyCallable("keys", a => { a.Expect("keys"); return new PyList([.. d.Keys]); }),
        "values" => new PyCallable("values", a => { a.Expect("values"); return new PyList(d.Entries.Select(e => e.Value).ToList()); }),
        "get" => new PyCallable("get", a =>
        {
            if (a.Positional.Count is < 1 or > 2 || a.Keywords.Count > 0) throw PyException.Type("get expected 1 or 2 arguments");
            return d.TryGet(a.Positional[0], out var v) ? v : a.Positional.Count > 1 ? a.Positional[1] : null;
        }),
        "copy" => new PyCallable("copy", a =>
        {
            a.Expect("copy");
            var copy = new PyDict();
            foreach (var e in d.Entries) copy.Set(e.Key, e.Value);
            return copy;
        }),
        "clear" or "pop" or "popitem" or "setdefault" or "update" => Undefined.WithHint($"access to attribute '{name}' of 'dict' object is unsafe."),
        "fromkeys" => throw PyException.Unsupported($"the dict method '{name}' is not supported"),
        _ => null,
    };

    static object? ListMethod(PyList l, string name) => name switch
    {
        "index" => new PyCallable("index", a =>
        {
            if (a.Positional.Count != 1) throw PyException.Unsupported("list.index with start/stop is not supported");
            int i = l.Items.FindIndex(x => PyOps.Eq(x, a.Positional[0]));
            return i >= 0 ? i : throw PyException.Value($"{PyRepr.Repr(a.Positional[0])} is not in list");
        }),
        "count" => new PyCallable("count", a => (long)l.Items.Count(x => PyOps.Eq(x, a.Get(0, "value", null)))),
        "copy" when !l.IsTuple => new PyCallable("copy", _ => new PyList([.. l.Items])),
        "append" or "clear" or "pop" or "reverse" or "insert" or "sort" or "extend" or "remove" when !l.IsTuple =>
            Undefined.WithHint($"access to attribute '{name}' of 'list' object is unsafe."),
        _ => null,
    };
}

/// <summary>The value of a slice subscript <c>[start:stop:step]</c>.</summary>
sealed record SliceValue(long? Start, long? Stop, long? Step);
