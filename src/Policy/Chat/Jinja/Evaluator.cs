using System.Text;

namespace Rlft.Policy.Chat.Jinja;

/// <summary>One scope of variables. Loop iterations, macro calls and with blocks get their own; if blocks do not.</summary>
sealed class Frame(Frame? parent)
{
    readonly Dictionary<string, object?> _vars = new();

    public bool TryLookup(string name, out object? value)
    {
        for (var f = this; f is not null; f = f.Parent)
            if (f._vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }

    public Frame? Parent { get; } = parent;
    public void Set(string name, object? value) => _vars[name] = value;
}

/// <summary>
/// Renders a parsed template: statements write to an output buffer, expressions evaluate to Python-like values
/// (see <see cref="PyOps"/>). Jinja's scoping holds: assignments inside a loop body or macro stay there (so
/// templates use <c>namespace()</c> to carry state out of loops); a Python error becomes a
/// <see cref="JinjaException"/> naming the template line.
/// </summary>
sealed partial class Evaluator
{
    enum Signal { None, Break, Continue }

    readonly StringBuilder _root = new();
    readonly List<(int Start, int End)> _generation = [];

    public static (string Text, List<(int Start, int End)> Generation) Render(List<Stmt> body, IReadOnlyDictionary<string, object?> variables)
    {
        var ev = new Evaluator();
        var globals = new Frame(null);
        foreach (var (name, fn) in Globals()) globals.Set(name, fn);
        var top = new Frame(globals);
        foreach (var (k, v) in variables) top.Set(k, v);
        ev.Exec(body, top, ev._root);
        return (ev._root.ToString(), ev._generation);
    }

    Signal Exec(List<Stmt> body, Frame frame, StringBuilder output)
    {
        foreach (var stmt in body)
        {
            Signal s;
            try { s = ExecOne(stmt, frame, output); }
            catch (PyException e) { throw new JinjaException(stmt.Line, e.Message); }
            if (s != Signal.None) return s;
        }
        return Signal.None;
    }

    Signal ExecOne(Stmt stmt, Frame frame, StringBuilder output)
    {
        switch (stmt)
        {
            case OutputStmt o:
                foreach (var part in o.Parts) output.Append(part is string data ? data : PyRepr.Str(Eval((Expr)part, frame)));
                return Signal.None;
            case IfStmt i:
                foreach (var (test, branch) in i.Branches)
                    if (PyOps.Truthy(Eval(test, frame))) return Exec(branch, frame, output);
                return i.Else is null ? Signal.None : Exec(i.Else, frame, output);
            case ForStmt f:
                return ExecFor(f, frame, output);
            case SetStmt s:
                Assign(s.Target, Eval(s.Value, frame), frame, s.Line);
                return Signal.None;
            case SetBlockStmt sb:
            {
                var buffer = new StringBuilder();
                Exec(sb.Body, new Frame(frame), buffer);
                Assign(sb.Target, ApplyChain(sb.Filters, buffer.ToString(), frame), frame, sb.Line);
                return Signal.None;
            }
            case MacroStmt m:
                frame.Set(m.Name, new MacroCallable(this, m, frame));
                return Signal.None;
            case FilterBlockStmt fb:
            {
                var buffer = new StringBuilder();
                var signal = Exec(fb.Body, frame, buffer);
                output.Append(PyRepr.Str(ApplyChain(fb.Filters, buffer.ToString(), frame)));
                return signal;
            }
            case WithStmt w:
            {
                var inner = new Frame(frame);
                foreach (var (target, value) in w.Assignments) Assign(target, Eval(value, frame), inner, w.Line);
                return Exec(w.Body, inner, output);
            }
            case GenerationStmt g:
            {
                int start = output.Length;
                var signal = Exec(g.Body, frame, output);
                if (ReferenceEquals(output, _root)) _generation.Add((start, output.Length));
                return signal;
            }
            case BreakStmt: return Signal.Break;
            case ContinueStmt: return Signal.Continue;
            default: throw new JinjaException(stmt.Line, $"unsupported statement {stmt.GetType().Name}");
        }
    }

    Signal ExecFor(ForStmt f, Frame frame, StringBuilder output)
    {
        var items = PyOps.Iterate(Eval(f.Iter, frame));
        if (f.Filter is not null)
            items = items.Where(item =>
            {
                var probe = new Frame(frame);
                Assign(f.Target, item, probe, f.Line);
                return PyOps.Truthy(Eval(f.Filter, probe));
            }).ToList();
        if (items.Count == 0) return f.Else is null ? Signal.None : Exec(f.Else, new Frame(frame), output);
        var loop = new LoopContext(items);
        for (int i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            var iteration = new Frame(frame);
            Assign(f.Target, items[i], iteration, f.Line);
            iteration.Set("loop", loop);
            if (Exec(f.Body, iteration, output) == Signal.Break) break;
        }
        return Signal.None;
    }

    object? ApplyChain(List<FilterExpr> filters, object? value, Frame frame)
    {
        foreach (var f in filters) value = Filters.Apply(f.Name, value, EvalArgs(f.Args, frame));
        return value;
    }

    void Assign(Expr target, object? value, Frame frame, int line)
    {
        switch (target)
        {
            case NameExpr n:
                frame.Set(n.Name, value);
                break;
            case GetAttrExpr { Target: NameExpr ns } attr:
                if (!frame.TryLookup(ns.Name, out var obj) || obj is not Namespace space)
                    throw new JinjaException(line, "cannot assign attribute on non-namespace object");
                space.Attributes[attr.Name] = value;
                break;
            case ListExpr { IsTuple: true } tuple:
            {
                var values = value is PyList or string ? PyOps.Iterate(value)
                    : throw new JinjaException(line, $"cannot unpack non-iterable {PyRepr.TypeName(value)} object");
                if (values.Count != tuple.Items.Count)
                    throw new JinjaException(line, values.Count > tuple.Items.Count
                        ? $"too many values to unpack (expected {tuple.Items.Count})"
                        : $"not enough values to unpack (expected {tuple.Items.Count}, got {values.Count})");
                for (int i = 0; i < values.Count; i++) Assign(tuple.Items[i], values[i], frame, line);
                break;
            }
            default:
                throw new JinjaException(line, "can't assign to this expression");
        }
    }

    /// <summary>A macro: a function rendering its body in a new scope whose parent is the scope it was defined in.</summary>
    sealed class MacroCallable(Evaluator ev, MacroStmt macro, Frame closure) : PyCallable(macro.Name, _ => null)
    {
        public override object? Invoke(CallArgs args)
        {
            var frame = new Frame(closure);
            var ps = macro.Parameters;
            for (int i = 0; i < ps.Count; i++)
            {
                var (name, fallback) = ps[i];
                object? value;
                if (i < args.Positional.Count) value = args.Positional[i];
                else if (args.Keywords.FirstOrDefault(k => k.Key == name) is { Key: not null } kw) value = kw.Value;
                else value = fallback is null ? Undefined.WithHint($"parameter '{name}' was not provided") : ev.Eval(fallback, frame);
                frame.Set(name, value);
            }
            frame.Set("varargs", new PyList(args.Positional.Skip(ps.Count).ToList()));
            var extra = new PyDict();
            foreach (var kw in args.Keywords.Where(k => ps.All(p => p.Name != k.Key))) extra.Set(kw.Key, kw.Value);
            frame.Set("kwargs", extra);
            var buffer = new StringBuilder();
            ev.Exec(macro.Body, frame, buffer);
            return buffer.ToString();
        }
    }
}
