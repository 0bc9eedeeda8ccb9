using System.Globalization;
using System.Text.RegularExpressions;

namespace Rlft.Policy.Chat.Jinja;

enum TokenKind { Data, BlockBegin, BlockEnd, VariableBegin, VariableEnd, Name, String, Integer, Float, Operator, Eof }

readonly record struct Token(TokenKind Kind, string Value, int Line, object? Literal = null)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public bool IsName(string value) => Kind == TokenKind.Name && Value == value;
    public bool IsOp(string value) => Kind == TokenKind.Operator && Value == value;
    public override string ToString() => Kind switch { TokenKind.Eof => "end of template", TokenKind.Data => "template data", _ => $"'{Value}'" };
}

/// <summary>
/// Jinja's lexer with the environment transformers uses (<c>trim_blocks=True, lstrip_blocks=True</c>, default
/// delimiters, <c>keep_trailing_newline=False</c>): newlines are normalised to \n, one trailing newline is dropped,
/// <c>{%-</c>/<c>-%}</c> strip all whitespace, <c>%}</c> eats one following newline, and a block or comment tag
/// alone on its line takes the line's leading spaces and tabs with it. Comments vanish; <c>{% raw %}</c> is data.
/// </summary>
static partial class Lexer
{
    [GeneratedRegex(@"\G(?<!\.)(\d+_)*\d+((\.(\d+_)*\d+)?[eE][+\-]?(\d+_)*\d+|\.(\d+_)*\d+)")]
    private static partial Regex FloatRe();
    [GeneratedRegex(@"\G(0[bB](_?[0-1])+|0[oO](_?[0-7])+|0[xX](_?[0-9a-fA-F])+|[1-9](_?\d)*|0(_?0)*)")]
    private static partial Regex IntegerRe();
    [GeneratedRegex(@"\G[a-zA-Z_][a-zA-Z0-9_]*")]
    private static partial Regex NameRe();
    [GeneratedRegex(@"\G('([^'\\]*(?:\\.[^'\\]*)*)'|""([^""\\]*(?:\\.[^""\\]*)*)"")", RegexOptions.Singleline)]
    private static partial Regex StringRe();
    [GeneratedRegex(@"\G\{%[\-+]?\s*raw\s*(\-%\}|%\})")]
    private static partial Regex RawBeginRe();
    [GeneratedRegex(@"\{%([\-+]?)\s*endraw\s*(\+%\}|\-%\}|%\})")]
    private static partial Regex RawEndRe();

    static readonly string[] Operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";"];

    public static List<Token> Tokenize(string source)
    {
        // Newlines become \n; without keep_trailing_newline a single trailing newline is dropped.
        source = source.Replace("\r\n", "\n").Replace('\r', '\n');
        if (source.EndsWith('\n')) source = source[..^1];
        var lines = new LineMap(source);

        var tokens = new List<Token>();
        int pos = 0;
        bool lineStarting = true;
        while (pos < source.Length)
        {
            int tag = FindTag(source, pos);
            if (tag < 0) { Emit(tokens, source[pos..], lines.At(pos)); break; }
            char kind = source[tag + 1];                                  // '{', '%' or '#'
            char sign = tag + 2 < source.Length && source[tag + 2] is '-' or '+' ? source[tag + 2] : '\0';
            string text = source[pos..tag];
            if (sign == '-') text = PyText.RStrip(text);
            else if (sign != '+' && kind != '{')
            {
                // lstrip_blocks: a block or comment tag preceded on its line only by whitespace takes that whitespace.
                int lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && lineStart < text.Length && AllSpace(text, lineStart))
                    text = text[..lineStart];
            }
            Emit(tokens, text, lines.At(pos));
            pos = tag;

            if (kind == '#')
            {
                if (!FindCommentEnd(source, pos + 2, out int after)) throw new JinjaException(lines.At(pos), "Missing end of comment tag");
                pos = after;
            }
            else if (kind == '%' && RawBeginRe().Match(source, pos) is { Success: true } raw)
            {
                int rawLine = lines.At(pos);
                pos += raw.Length;
                if (raw.Groups[1].Value == "-%}") pos = SkipWhitespace(source, pos);
                var end = RawEndRe().Match(source, pos);
                if (!end.Success) throw new JinjaException(rawLine, "Missing end of raw directive");
                string body = source[pos..end.Index];
                if (end.Groups[1].Value == "-") body = PyText.RStrip(body);
                Emit(tokens, body, lines.At(pos));
                pos = end.Index + end.Length;
                if (end.Groups[2].Value == "-%}") pos = SkipWhitespace(source, pos);
                else if (end.Groups[2].Value == "%}" && pos < source.Length && source[pos] == '\n') pos++;
            }
            else
            {
                bool block = kind == '%';
                tokens.Add(new Token(block ? TokenKind.BlockBegin : TokenKind.VariableBegin, block ? "{%" : "{{", lines.At(pos)));
                pos = LexTag(source, pos + (sign == '\0' ? 2 : 3), block, tokens, lines);
            }
            lineStarting = source[pos - 1] == '\n';
        }
        tokens.Add(new Token(TokenKind.Eof, "", lines.At(source.Length)));
        return tokens;
    }

    /// <summary>Line numbers (1-based) of positions in the normalised source.</summary>
    sealed class LineMap(string source)
    {
        readonly int[] _newlines = source.Select((c, i) => (c, i)).Where(x => x.c == '\n').Select(x => x.i).ToArray();

        public int At(int pos)
        {
            int i = Array.BinarySearch(_newlines, pos);
            return 1 + (i >= 0 ? i : ~i);
        }
    }

    static void Emit(List<Token> tokens, string text, int line)
    {
        if (text.Length > 0) tokens.Add(new Token(TokenKind.Data, text, line));
    }

    static bool AllSpace(string s, int from)
    {
        for (int i = from; i < s.Length; i++) if (!PyText.IsSpace(s[i])) return false;
        return true;
    }

    static int FindTag(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    static int SkipWhitespace(string s, int pos)
    {
        while (pos < s.Length && PyText.IsSpace(s[pos])) pos++;
        return pos;
    }

    /// <summary>The first of <c>+#}</c>, <c>-#}\s*</c>, <c>#}\n?</c> at or after <paramref name="from"/>.</summary>
    static bool FindCommentEnd(string s, int from, out int after)
    {
        for (int i = from; i < s.Length; i++)
        {
            if (s[i] is '+' or '-' && i + 2 < s.Length && s[i + 1] == '#' && s[i + 2] == '}')
            {
                after = s[i] == '-' ? SkipWhitespace(s, i + 3) : i + 3;
                return true;
            }
            if (s[i] == '#' && i + 1 < s.Length && s[i + 1] == '}')
            {
                after = i + 2 < s.Length && s[i + 2] == '\n' ? i + 3 : i + 2;
                return true;
            }
        }
        after = -1;
        return false;
    }

    /// <summary>Expression tokens up to the tag's end; returns the position after it (and the whitespace it strips).</summary>
    static int LexTag(string s, int pos, bool block, List<Token> tokens, LineMap lines)
    {
        var balance = new Stack<char>();
        string close = block ? "%}" : "}}";
        var endKind = block ? TokenKind.BlockEnd : TokenKind.VariableEnd;
        while (true)
        {
            if (pos >= s.Length) throw new JinjaException(lines.At(pos), $"unexpected end of template: missing '{close}'");
            int line = lines.At(pos);
            char c = s[pos];
            if (balance.Count == 0)
            {
                // End rules come first, as in Jinja; inside brackets they do not apply.
                if (c == '-' && string.CompareOrdinal(s, pos + 1, close, 0, 2) == 0)
                {
                    tokens.Add(new Token(endKind, close, line));
                    return SkipWhitespace(s, pos + 3);
                }
                if (block && c == '+' && string.CompareOrdinal(s, pos + 1, close, 0, 2) == 0)
                {
                    tokens.Add(new Token(endKind, close, line));
                    return pos + 3;
                }
                if (string.CompareOrdinal(s, pos, close, 0, 2) == 0)
                {
                    tokens.Add(new Token(endKind, close, line));
                    pos += 2;
                    if (block && pos < s.Length && s[pos] == '\n') pos++;   // trim_blocks
                    return pos;
                }
            }
            if (PyText.IsSpace(c)) { pos++; continue; }
            Match m;
            if ((m = FloatRe().Match(s, pos)).Success)
                tokens.Add(new Token(TokenKind.Float, m.Value, line, double.Parse(m.Value.Replace("_", ""), CultureInfo.InvariantCulture)));
            else if ((m = IntegerRe().Match(s, pos)).Success)
                tokens.Add(new Token(TokenKind.Integer, m.Value, line, ParseInteger(m.Value.Replace("_", ""), line)));
            else if ((m = NameRe().Match(s, pos)).Success)
                tokens.Add(new Token(TokenKind.Name, m.Value, line));
            else if ((m = StringRe().Match(s, pos)).Success)
                tokens.Add(new Token(TokenKind.String, m.Value, line, PyText.Unescape(m.Value[1..^1], line)));
            else
            {
                string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(s, pos, o, 0, o.Length) == 0);
                if (op is null)
                    throw new JinjaException(line, c is '\'' or '"' ? "unexpected end of string" : $"unexpected char {PyRepr.Repr(c.ToString())} at {pos}");
                if (op is "(" or "[" or "{") balance.Push(op[0]);
                else if (op is ")" or "]" or "}")
                {
                    char expected = op == ")" ? '(' : op == "]" ? '[' : '{';
                    if (balance.Count == 0 || balance.Pop() != expected) throw new JinjaException(line, $"unexpected '{op}'");
                }
                tokens.Add(new Token(TokenKind.Operator, op, line));
                pos += op.Length;
                continue;
            }
            pos += m.Length;
        }
    }

    static long ParseInteger(string text, int line)
    {
        try
        {
            if (text.Length > 2 && text[0] == '0' && text[1] is 'x' or 'X') return Convert.ToInt64(text[2..], 16);
            if (text.Length > 2 && text[0] == '0' && text[1] is 'o' or 'O') return Convert.ToInt64(text[2..], 8);
            if (text.Length > 2 && text[0] == '0' && text[1] is 'b' or 'B') return Convert.ToInt64(text[2..], 2);
            return long.Parse(text, CultureInfo.InvariantCulture);
        }
        catch (OverflowException) { throw new JinjaException(line, $"integer literal {text} is too large"); }
    }
}
