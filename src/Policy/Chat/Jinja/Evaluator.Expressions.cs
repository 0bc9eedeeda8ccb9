namespace Rlft.Policy.Chat.Jinja;

sealed partial class Evaluator
{
    /// <summary>The globals Jinja provides (range, namespace, dict) and the two transformers adds (raise_exception, strftime_now).</summary>
    static IEnumerable<(string, PyCallable)> Globals()
    {
        yield return ("range", new PyCallable("range", Range));
        yield return ("namespace", new PyCallable("namespace", a =>
        {
            var ns = new Namespace();
            foreach (var p in a.Positional)
            {
                if (p is not PyDict d) throw PyException.Type("namespace() takes a mapping as positional argument");
                foreach (var e in d.Entries) ns.Attributes[PyRepr.Str(e.Key)] = e.Value;
            }
            foreach (var (k, v) in a.Keywords) ns.Attributes[k] = v;
            return ns;
        }));
        yield return ("dict", new PyCallable("dict", a =>
        {
            var d = new PyDict();
            foreach (var p in a.Positional)
                if (p is PyDict src) foreach (var e in src.Entries) d.Set(e.Key, e.Value);
                else throw PyException.Unsupported("dict() from a sequence of pairs is not supported");
            foreach (var (k, v) in a.Keywords) d.Set(k, v);
            return d;
        }));
        yield return ("raise_exception", new RaiseException());
        yield return ("strftime_now", new PyCallable("strftime_now", a =>
            PyFormat.Strftime(DateTime.Now, a.Get(0, "format", null) as string ?? throw PyException.Type("strftime_now() needs a format string"))));
        foreach (var name in new[] { "lipsum", "cycler", "joiner" })
            yield return (name, new PyCallable(name, _ => throw PyException.Unsupported($"the global '{name}' is not supported")));
    }

    const long MaxRange = 100_000;   // Jinja's sandbox limit

    static object? Range(CallArgs a)
    {
        if (a.Keywords.Count > 0) throw PyException.Type("range() takes no keyword arguments");
        long Int(object? v) => v switch { long l => l, bool b => b ? 1 : 0, _ => throw PyException.Type($"'{PyRepr.TypeName(v)}' object cannot be interpreted as an integer") };
        var p = a.Positional;
        (long start, long stop, long step) = p.Count switch
        {
            1 => (0L, Int(p[0]), 1L),
            2 => (Int(p[0]), Int(p[1]), 1L),
            3 => (Int(p[0]), Int(p[1]), Int(p[2])),
            _ => throw PyException.Type($"range expected at most 3 arguments, got {p.Count}"),
        };
        if (step == 0) throw PyException.Value("range() arg 3 must not be zero");
        var items = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (items.Count >= MaxRange) throw new PyException("OverflowError", $"Range too big. The sandbox blocks ranges larger than MAX_RANGE ({MaxRange}).");
            items.Add(i);
        }
        return new PyList(items);
    }

    object? Eval(Expr e, Frame frame)
    {
        try { return EvalOne(e, frame); }
        catch (PyException x) { throw new JinjaException(e.Line, x.Message); }
        catch (OverflowException) { throw new JinjaException(e.Line, "integer result outside RLFT's 64-bit range"); }
    }

    object? EvalOne(Expr e, Frame frame)
    {
        switch (e)
        {
            case ConstExpr c: return c.Value;
            case NameExpr n: return frame.TryLookup(n.Name, out var v) ? v : Undefined.Named(n.Name);
            case ListExpr l: return new PyList(l.Items.Select(x => Eval(x, frame)).ToList(), l.IsTuple);
            case DictExpr d:
            {
                var dict = new PyDict();
                foreach (var (k, val) in d.Items) dict.Set(Eval(k, frame), Eval(val, frame));
                return dict;
            }
            case GetAttrExpr g: return Access.GetAttr(Eval(g.Target, frame), g.Name);
            case GetItemExpr g:
            {
                var target = Eval(g.Target, frame);
                object? key = g.Index is SliceExpr s
                    ? new SliceValue(PyOps.SliceBound(EvalOpt(s.Start, frame)), PyOps.SliceBound(EvalOpt(s.Stop, frame)), PyOps.SliceBound(EvalOpt(s.Step, frame)))
                    : Eval(g.Index, frame);
                return Access.GetItem(target, key);
            }
            case CallExpr c:
            {
                var fn = Eval(c.Target, frame);
                var args = EvalArgs(c.Args, frame);
                return fn switch
                {
                    RaiseException =>
                        throw new TemplateRaisedException(c.Line, PyRepr.Str(args.Get(0, "message", ""))),
                    PyCallable callable => callable.Invoke(args),
                    Undefined u => throw u.Fail(),
                    _ => throw PyException.Type($"'{PyRepr.TypeName(fn)}' object is not callable"),
                };
            }
            case FilterExpr f: return Filters.Apply(f.Name, f.Target is null ? null : Eval(f.Target, frame), EvalArgs(f.Args, frame));
            case TestExpr t: return Tests.Apply(t.Name, Eval(t.Target, frame), EvalArgs(t.Args, frame));
            case UnaryExpr u:
            {
                var operand = Eval(u.Operand, frame);
                return u.Op switch { "not" => !PyOps.Truthy(operand), "-" => PyOps.Negate(operand), _ => PyOps.Plus(operand) };
            }
            case BinaryExpr { Op: "and" } b:
            {
                var left = Eval(b.Left, frame);
                return PyOps.Truthy(left) ? Eval(b.Right, frame) : left;
            }
            case BinaryExpr { Op: "or" } b:
            {
                var left = Eval(b.Left, frame);
                return PyOps.Truthy(left) ? left : Eval(b.Right, frame);
            }
            case BinaryExpr b: return PyOps.Binary(b.Op, Eval(b.Left, frame), Eval(b.Right, frame));
            case ConcatExpr c: return string.Concat(c.Parts.Select(p => PyRepr.Str(Eval(p, frame))));
            case CompareExpr c:
            {
                var left = Eval(c.First, frame);
                foreach (var (op, rightExpr) in c.Rest)
                {
                    var right = Eval(rightExpr, frame);
                    bool ok = op switch
                    {
                        "==" => PyOps.Eq(left, right),
                        "!=" => !PyOps.Eq(left, right),
                        "in" => PyOps.In(left, right),
                        "not in" => !PyOps.In(left, right),
                        "<" => PyOps.Compare(left, right, op) < 0,
                        "<=" => PyOps.Compare(left, right, op) <= 0,
                        ">" => PyOps.Compare(left, right, op) > 0,
                        _ => PyOps.Compare(left, right, op) >= 0,
                    };
                    if (!ok) return false;
                    left = right;
                }
                return true;
            }
            case CondExpr c:
                return PyOps.Truthy(Eval(c.Test, frame)) ? Eval(c.Then, frame)
                    : c.Else is null ? Undefined.WithHint($"the inline if-expression on line {c.Line} evaluated to false and no else section was defined.") : Eval(c.Else, frame);
            case SliceExpr: throw PyException.Runtime("a slice is only valid inside []");
            default: throw PyException.Unsupported($"expression {e.GetType().Name}");
        }
    }

    object? EvalOpt(Expr? e, Frame frame) => e is null ? null : Eval(e, frame);

    CallArgs EvalArgs(Arguments a, Frame frame)
    {
        var positional = a.Positional.Select(x => Eval(x, frame)).ToList();
        var keywords = a.Keywords.Select(k => new KeyValuePair<string, object?>(k.Name, Eval(k.Value, frame))).ToList();
        if (a.Star is not null) positional.AddRange(PyOps.Iterate(Eval(a.Star, frame)));
        if (a.StarStar is not null)
        {
            if (Eval(a.StarStar, frame) is not PyDict d) throw PyException.Type("argument after ** must be a mapping");
            keywords.AddRange(d.Entries.Select(x => new KeyValuePair<string, object?>(x.Key as string ?? throw PyException.Type("keywords must be strings"), x.Value)));
        }
        return new CallArgs(positional, keywords);
    }
}

/// <summary>transformers' <c>raise_exception(message)</c>: stops rendering with the template's message.</summary>
sealed class RaiseException() : PyCallable("raise_exception", _ => null);
