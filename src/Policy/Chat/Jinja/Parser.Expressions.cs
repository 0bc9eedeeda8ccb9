namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// Jinja's expression grammar, loosest first: <c>a if b else c</c> → or → and → not → comparisons and <c>in</c>
/// → <c>+ -</c> → <c>~</c> → <c>* / // %</c> → <c>**</c> → unary <c>- +</c> → primary with <c>.attr</c>,
/// <c>[item]</c>, calls, then filters and tests (so <c>a + b | trim</c> trims only b).
/// </summary>
sealed partial class Parser
{
    bool IsTupleEnd(string? extraEnd) =>
        Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd || Current.IsOp(")") || (extraEnd is not null && Current.IsName(extraEnd));

    Expr ParseTuple(bool withCondExpr, string? extraEnd = null, bool explicitParentheses = false)
    {
        int line = Current.Line;
        var items = new List<Expr>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) Expect(TokenKind.Operator, ",");
            if (IsTupleEnd(extraEnd)) break;
            items.Add(ParseExpression(withCondExpr));
            if (Current.IsOp(",")) isTuple = true; else break;
        }
        if (!isTuple)
        {
            if (items.Count > 0) return items[0];
            if (!explicitParentheses) throw Fail($"Expected an expression, got {Current}");
        }
        return new ListExpr(line, items, IsTuple: true);
    }

    Expr ParseExpression(bool withCondExpr = true) => withCondExpr ? ParseCondExpr() : ParseOr();

    Expr ParseCondExpr()
    {
        int line = Current.Line;
        var expr = ParseOr();
        while (SkipIf(TokenKind.Name, "if"))
        {
            var test = ParseOr();
            var otherwise = SkipIf(TokenKind.Name, "else") ? ParseCondExpr() : null;
            expr = new CondExpr(line, test, expr, otherwise);
            line = Current.Line;
        }
        return expr;
    }

    Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or")) { int line = Next().Line; left = new BinaryExpr(line, "or", left, ParseAnd()); }
        return left;
    }

    Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and")) { int line = Next().Line; left = new BinaryExpr(line, "and", left, ParseNot()); }
        return left;
    }

    Expr ParseNot()
    {
        if (Current.IsName("not")) { int line = Next().Line; return new UnaryExpr(line, "not", ParseNot()); }
        return ParseCompare();
    }

    Expr ParseCompare()
    {
        int line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && Current.Value is "==" or "!=" or "<" or "<=" or ">" or ">=")
                rest.Add((Next().Value, ParseMath1()));
            else if (SkipIf(TokenKind.Name, "in")) rest.Add(("in", ParseMath1()));
            else if (Current.IsName("not") && Look.IsName("in")) { _pos += 2; rest.Add(("not in", ParseMath1())); }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(line, first, rest);
    }

    Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
        {
            var op = Next();
            left = new BinaryExpr(op.Line, op.Value, left, ParseConcat());
        }
        return left;
    }

    Expr ParseConcat()
    {
        int line = Current.Line;
        var parts = new List<Expr> { ParseMath2() };
        while (SkipIf(TokenKind.Operator, "~")) parts.Add(ParseMath2());
        return parts.Count == 1 ? parts[0] : new ConcatExpr(line, parts);
    }

    Expr ParseMath2()
    {
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var op = Next();
            left = new BinaryExpr(op.Line, op.Value, left, ParsePow());
        }
        return left;
    }

    Expr ParsePow()
    {
        var left = ParseUnary();
        while (Current.IsOp("**")) { int line = Next().Line; left = new BinaryExpr(line, "**", left, ParseUnary()); }
        return left;
    }

    Expr ParseUnary(bool withFilter = true)
    {
        int line = Current.Line;
        Expr node;
        if (Current.IsOp("-")) { _pos++; node = new UnaryExpr(line, "-", ParseUnary(false)); }
        else if (Current.IsOp("+")) { _pos++; node = new UnaryExpr(line, "+", ParseUnary(false)); }
        else node = ParsePrimary();
        node = ParsePostfix(node);
        return withFilter ? ParseFilterExpr(node) : node;
    }

    Expr ParsePrimary()
    {
        var t = Current;
        switch (t.Kind)
        {
            case TokenKind.Name:
                _pos++;
                return t.Value switch
                {
                    "true" or "True" => new ConstExpr(t.Line, true),
                    "false" or "False" => new ConstExpr(t.Line, false),
                    "none" or "None" => new ConstExpr(t.Line, null),
                    _ => new NameExpr(t.Line, t.Value),
                };
            case TokenKind.String:
            {
                _pos++;
                string value = (string)t.Literal!;
                while (Current.Kind == TokenKind.String) value += (string)Next().Literal!;   // "a" "b" is "ab"
                return new ConstExpr(t.Line, value);
            }
            case TokenKind.Integer or TokenKind.Float:
                _pos++;
                return new ConstExpr(t.Line, t.Literal);
            case TokenKind.Operator when t.Value == "(":
            {
                _pos++;
                var inner = ParseTuple(withCondExpr: true, explicitParentheses: true);
                Expect(TokenKind.Operator, ")");
                return inner;
            }
            case TokenKind.Operator when t.Value == "[":
            {
                _pos++;
                var items = new List<Expr>();
                while (!Current.IsOp("]"))
                {
                    if (items.Count > 0) Expect(TokenKind.Operator, ",");
                    if (Current.IsOp("]")) break;
                    items.Add(ParseExpression());
                }
                Expect(TokenKind.Operator, "]");
                return new ListExpr(t.Line, items, IsTuple: false);
            }
            case TokenKind.Operator when t.Value == "{":
            {
                _pos++;
                var items = new List<(Expr, Expr)>();
                while (!Current.IsOp("}"))
                {
                    if (items.Count > 0) Expect(TokenKind.Operator, ",");
                    if (Current.IsOp("}")) break;
                    var key = ParseExpression();
                    Expect(TokenKind.Operator, ":");
                    items.Add((key, ParseExpression()));
                }
                Expect(TokenKind.Operator, "}");
                return new DictExpr(t.Line, items);
            }
            default:
                throw Fail(t.Kind == TokenKind.Eof ? "unexpected end of template" : $"unexpected {t}");
        }
    }

    Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (Current.IsOp("."))
            {
                int line = Next().Line;
                var attr = Next();
                if (attr.Kind == TokenKind.Name) node = new GetAttrExpr(line, node, attr.Value);
                else if (attr.Kind == TokenKind.Integer) node = new GetItemExpr(line, node, new ConstExpr(attr.Line, attr.Literal));
                else throw Fail("expected name or number", attr.Line);
            }
            else if (Current.IsOp("["))
            {
                int line = Next().Line;
                var args = new List<Expr>();
                while (!Current.IsOp("]"))
                {
                    if (args.Count > 0) Expect(TokenKind.Operator, ",");
                    args.Add(ParseSubscribed());
                }
                Expect(TokenKind.Operator, "]");
                node = new GetItemExpr(line, node, args.Count == 1 ? args[0] : new ListExpr(line, args, IsTuple: true));
            }
            else if (Current.IsOp("(")) node = new CallExpr(Current.Line, node, ParseCallArgs());
            else return node;
        }
    }

    Expr ParseSubscribed()
    {
        int line = Current.Line;
        Expr? start = null;
        if (!Current.IsOp(":"))
        {
            var node = ParseExpression();
            if (!Current.IsOp(":")) return node;
            start = node;
        }
        _pos++;
        Expr? stop = Current.IsOp(":") || Current.IsOp("]") || Current.IsOp(",") ? null : ParseExpression();
        Expr? step = null;
        if (SkipIf(TokenKind.Operator, ":") && !(Current.IsOp("]") || Current.IsOp(","))) step = ParseExpression();
        return new SliceExpr(line, start, stop, step);
    }

    Arguments ParseCallArgs()
    {
        var open = Expect(TokenKind.Operator, "(");
        var args = new Arguments([], []);
        Expr? star = null, starStar = null;
        bool requireComma = false;
        while (!Current.IsOp(")"))
        {
            if (requireComma)
            {
                Expect(TokenKind.Operator, ",");
                if (Current.IsOp(")")) break;
            }
            if (Current.IsOp("*"))
            {
                if (star is not null || starStar is not null) throw Fail("invalid syntax for function call expression", open.Line);
                _pos++;
                star = ParseExpression();
            }
            else if (Current.IsOp("**"))
            {
                if (starStar is not null) throw Fail("invalid syntax for function call expression", open.Line);
                _pos++;
                starStar = ParseExpression();
            }
            else if (Current.Kind == TokenKind.Name && Look.IsOp("="))
            {
                if (starStar is not null) throw Fail("invalid syntax for function call expression", open.Line);
                string key = Next().Value;
                _pos++;
                args.Keywords.Add((key, ParseExpression()));
            }
            else
            {
                if (star is not null || starStar is not null || args.Keywords.Count > 0) throw Fail("invalid syntax for function call expression", open.Line);
                args.Positional.Add(ParseExpression());
            }
            requireComma = true;
        }
        Expect(TokenKind.Operator, ")");
        return args with { Star = star, StarStar = starStar };
    }

    Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (Current.IsOp("|")) node = ParseFilterChain(inline: false, node)[^1];
            else if (Current.IsName("is")) node = ParseTest(node);
            else if (Current.IsOp("(")) node = new CallExpr(Current.Line, node, ParseCallArgs());
            else return node;
        }
    }

    /// <summary><c>| name(args) | name…</c>; each filter applies to the previous one (the first to <paramref name="target"/>).</summary>
    List<FilterExpr> ParseFilterChain(bool inline, Expr? target = null)
    {
        var chain = new List<FilterExpr>();
        while (Current.IsOp("|") || inline)
        {
            if (!inline) _pos++;
            inline = false;
            var name = Expect(TokenKind.Name);
            Builtins.CheckFilter(name.Value, name.Line);
            var args = Current.IsOp("(") ? ParseCallArgs() : Arguments.None;
            var filter = new FilterExpr(name.Line, chain.Count > 0 ? chain[^1] : target, name.Value, args);
            chain.Add(filter);
        }
        return chain;
    }

    Expr ParseTest(Expr node)
    {
        int line = Next().Line;
        bool negated = SkipIf(TokenKind.Name, "not");
        var name = Expect(TokenKind.Name);
        Builtins.CheckTest(name.Value, name.Line);
        var args = Arguments.None;
        if (Current.IsOp("(")) args = ParseCallArgs();
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || Current.IsOp("(") || Current.IsOp("[") || Current.IsOp("{"))
                 && !Current.IsName("else") && !Current.IsName("or") && !Current.IsName("and"))
        {
            if (Current.IsName("is")) throw Fail("You cannot chain multiple tests with is");
            args = new Arguments([ParsePostfix(ParsePrimary())], []);
        }
        Expr test = new TestExpr(line, node, name.Value, args);
        return negated ? new UnaryExpr(line, "not", test) : test;
    }
}
