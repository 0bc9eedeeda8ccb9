namespace Rlft.Actors.Configuration;

/// <summary>
/// Checks that braces and brackets in HOCON text balance before the text reaches Akka's parser.
/// Why: Akka's HOCON parser accepts an unclosed object silently and loops forever on an unclosed
/// list inside an object (<c>a { b = [1, 2 }</c>). A user's typo must be a one-line error, not a hang.
/// Strings ("...", """...""") and comments (#, //) are skipped.
/// </summary>
internal static class HoconBrackets
{
    public static void Check(string text, string source)
    {
        var open = new Stack<(char Bracket, int Line)>();
        int line = 1;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\n') { line++; continue; }
            if (c == '#' || (c == '/' && i + 1 < text.Length && text[i + 1] == '/'))
            {
                while (i + 1 < text.Length && text[i + 1] != '\n') i++;
                continue;
            }
            if (c == '"')
            {
                bool triple = i + 2 < text.Length && text[i + 1] == '"' && text[i + 2] == '"';
                int start = line;
                if (triple)
                {
                    int end = text.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal);
                    if (end < 0) throw new ConfigException($"{source}: line {start}: unterminated \"\"\" string");
                    line += text.AsSpan(i, end - i).Count('\n');
                    i = end + 2;
                    continue;
                }
                i++;
                while (i < text.Length && text[i] != '"' && text[i] != '\n') i += text[i] == '\\' ? 2 : 1;
                if (i >= text.Length || text[i] != '"') throw new ConfigException($"{source}: line {start}: unterminated string");
                continue;
            }
            if (c is '{' or '[') open.Push((c, line));
            else if (c is '}' or ']')
            {
                char want = c == '}' ? '{' : '[';
                if (open.Count == 0) throw new ConfigException($"{source}: line {line}: '{c}' without a matching '{want}'");
                var (b, at) = open.Pop();
                if (b != want) throw new ConfigException($"{source}: line {line}: '{c}' closes the '{b}' opened on line {at}");
            }
        }
        if (open.Count > 0)
        {
            var (b, at) = open.Peek();
            throw new ConfigException($"{source}: line {at}: '{b}' is never closed");
        }
    }
}
