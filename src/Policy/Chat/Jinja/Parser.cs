namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// Jinja's statement grammar (for, if/elif/else, set and block set, macro, filter, with, generation, break,
/// continue, print) over the token stream; expressions are in <c>Parser.Expressions.cs</c>. Tags Jinja has but
/// RLFT does not (include, import, extends, block, call…) are errors naming the line.
/// </summary>
sealed partial class Parser
{
    readonly List<Token> _tokens;
    int _pos;
    int _loopDepth;

    Parser(List<Token> tokens) => _tokens = tokens;

    public static List<Stmt> Parse(string source)
    {
        var parser = new Parser(Lexer.Tokenize(source));
        var body = parser.Subparse(null);
        if (parser.Current.Kind != TokenKind.Eof) throw parser.Fail($"unexpected {parser.Current}");
        return body;
    }

    Token Current => _tokens[_pos];
    Token Look => _tokens[Math.Min(_pos + 1, _tokens.Count - 1)];
    Token Next() => _tokens[_pos++];

    JinjaException Fail(string message, int? line = null) => new(line ?? Current.Line, message);

    Token Expect(TokenKind kind, string? value = null)
    {
        var t = Current;
        if (t.Kind != kind || (value is not null && t.Value != value))
        {
            string wanted = value is not null ? $"'{value}'" : kind switch
            {
                TokenKind.Name => "a name", TokenKind.BlockEnd => "end of statement block", TokenKind.VariableEnd => "end of print statement",
                _ => kind.ToString(),
            };
            throw Fail(t.Kind == TokenKind.Eof ? $"unexpected end of template, expected {wanted}" : $"expected {wanted}, got {t}");
        }
        _pos++;
        return t;
    }

    bool SkipIf(TokenKind kind, string value)
    {
        if (!Current.Is(kind, value)) return false;
        _pos++;
        return true;
    }

    List<Stmt> Subparse(string[]? endTags)
    {
        var body = new List<Stmt>();
        OutputStmt? output = null;
        void Add(object part, int line)
        {
            if (output is null) { output = new OutputStmt(line, []); body.Add(output); }
            output.Parts.Add(part);
        }
        while (Current.Kind != TokenKind.Eof)
        {
            var t = Current;
            if (t.Kind == TokenKind.Data) { Add(t.Value, t.Line); _pos++; }
            else if (t.Kind == TokenKind.VariableBegin)
            {
                _pos++;
                Add(ParseTuple(withCondExpr: true), t.Line);
                Expect(TokenKind.VariableEnd);
            }
            else if (t.Kind == TokenKind.BlockBegin)
            {
                output = null;
                _pos++;
                if (endTags is not null && Current.Kind == TokenKind.Name && endTags.Contains(Current.Value)) return body;
                body.Add(ParseStatement());
                Expect(TokenKind.BlockEnd);
            }
            else throw Fail($"unexpected {t}");
        }
        if (endTags is not null)
            throw Fail($"Unexpected end of template. Jinja was looking for the following tags: {string.Join(" or ", endTags.Select(e => $"'{e}'"))}.");
        return body;
    }

    /// <summary>Block end, body up to one of <paramref name="endTags"/>; the end tag's name is consumed when <paramref name="dropNeedle"/>.</summary>
    List<Stmt> ParseStatements(string[] endTags, bool dropNeedle = false)
    {
        SkipIf(TokenKind.Operator, ":");
        Expect(TokenKind.BlockEnd);
        var body = Subparse(endTags);
        if (dropNeedle) _pos++;
        return body;
    }

    Stmt ParseStatement()
    {
        var t = Current;
        if (t.Kind != TokenKind.Name) throw Fail("tag name expected");
        switch (t.Value)
        {
            case "for": return ParseFor();
            case "if": return ParseIf();
            case "set": return ParseSet();
            case "macro": return ParseMacro();
            case "filter":
            {
                _pos++;
                var filters = ParseFilterChain(inline: true);
                return new FilterBlockStmt(t.Line, filters, ParseStatements(["endfilter"], dropNeedle: true));
            }
            case "with": return ParseWith();
            case "print":
            {
                _pos++;
                return new OutputStmt(t.Line, [ParseTuple(withCondExpr: true)]);
            }
            case "generation":
                _pos++;
                return new GenerationStmt(t.Line, ParseStatements(["endgeneration"], dropNeedle: true));
            case "break" or "continue":
                _pos++;
                if (_loopDepth == 0) throw Fail($"'{t.Value}' outside loop", t.Line);
                return t.Value == "break" ? new BreakStmt(t.Line) : new ContinueStmt(t.Line);
            case "include" or "import" or "from" or "extends" or "block" or "call" or "autoescape":
                throw Fail($"the '{t.Value}' tag is not supported in chat templates");
            default:
                throw Fail($"Encountered unknown tag '{t.Value}'.");
        }
    }

    Stmt ParseFor()
    {
        int line = Next().Line;
        var target = ParseAssignTarget(extraEnd: "in");
        Expect(TokenKind.Name, "in");
        var iter = ParseTuple(withCondExpr: false, extraEnd: "recursive");
        Expr? filter = SkipIf(TokenKind.Name, "if") ? ParseExpression() : null;
        if (Current.IsName("recursive")) throw Fail("recursive for loops are not supported");
        _loopDepth++;
        var body = ParseStatements(["endfor", "else"]);
        _loopDepth--;
        List<Stmt>? elseBody = null;
        if (Next().Value == "else") elseBody = ParseStatements(["endfor"], dropNeedle: true);
        return new ForStmt(line, target, iter, body, elseBody, filter);
    }

    Stmt ParseIf()
    {
        int line = Next().Line;
        var branches = new List<(Expr, List<Stmt>)>();
        List<Stmt>? elseBody = null;
        while (true)
        {
            var test = ParseTuple(withCondExpr: false);
            branches.Add((test, ParseStatements(["elif", "else", "endif"])));
            var tag = Next();
            if (tag.Value == "elif") continue;
            if (tag.Value == "else") elseBody = ParseStatements(["endif"], dropNeedle: true);
            break;
        }
        return new IfStmt(line, branches, elseBody);
    }

    Stmt ParseSet()
    {
        int line = Next().Line;
        var target = ParseAssignTarget(withNamespace: true);
        if (SkipIf(TokenKind.Operator, "=")) return new SetStmt(line, target, ParseTuple(withCondExpr: true));
        var filters = Current.IsOp("|") ? ParseFilterChain(inline: false) : [];
        return new SetBlockStmt(line, target, ParseStatements(["endset"], dropNeedle: true), filters);
    }

    Stmt ParseMacro()
    {
        int line = Next().Line;
        string name = Expect(TokenKind.Name).Value;
        var parameters = new List<(string, Expr?)>();
        Expect(TokenKind.Operator, "(");
        while (!Current.IsOp(")"))
        {
            if (parameters.Count > 0) Expect(TokenKind.Operator, ",");
            string p = Expect(TokenKind.Name).Value;
            Expr? fallback = SkipIf(TokenKind.Operator, "=") ? ParseExpression() : null;
            if (fallback is null && parameters.Any(x => x.Item2 is not null)) throw Fail("non-default argument follows default argument");
            parameters.Add((p, fallback));
        }
        Expect(TokenKind.Operator, ")");
        int depth = _loopDepth;
        _loopDepth = 0;
        var body = ParseStatements(["endmacro"], dropNeedle: true);
        _loopDepth = depth;
        return new MacroStmt(line, name, parameters, body);
    }

    Stmt ParseWith()
    {
        int line = Next().Line;
        var assignments = new List<(Expr, Expr)>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (assignments.Count > 0) Expect(TokenKind.Operator, ",");
            var target = ParseAssignTarget();
            Expect(TokenKind.Operator, "=");
            assignments.Add((target, ParseExpression()));
        }
        return new WithStmt(line, assignments, ParseStatements(["endwith"], dropNeedle: true));
    }

    /// <summary>A name, <c>ns.attr</c> (set only), or a tuple of names.</summary>
    Expr ParseAssignTarget(string? extraEnd = null, bool withNamespace = false)
    {
        if (withNamespace && Current.Kind == TokenKind.Name && Look.IsOp("."))
        {
            var ns = Next();
            _pos++;
            var attr = Expect(TokenKind.Name);
            return new GetAttrExpr(ns.Line, new NameExpr(ns.Line, ns.Value), attr.Value);
        }
        int line = Current.Line;
        var names = new List<Expr>();
        bool tuple = false;
        while (true)
        {
            if (names.Count > 0) Expect(TokenKind.Operator, ",");
            if (IsTupleEnd(extraEnd)) break;
            var t = Expect(TokenKind.Name);
            if (t.Value is "true" or "false" or "none" or "True" or "False" or "None") throw Fail($"can't assign to {t.Value}", t.Line);
            names.Add(new NameExpr(t.Line, t.Value));
            if (Current.IsOp(",")) tuple = true; else break;
        }
        if (names.Count == 0) throw Fail($"expected a name, got {Current}");
        return tuple ? new ListExpr(line, names, IsTuple: true) : names[0];
    }
}
