using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Rlft.Hosting;

/// <summary>HOCON text as it is, for a value the builders do not render themselves (an object, a list of objects).</summary>
public sealed record RawHocon(string Text);

/// <summary>
/// Renders the values a code-built job sets as HOCON literals, so that it is read by the same reader (and checked by
/// the same validator) as a job file: strings JSON-quoted, numbers invariant and round-trippable, lists in brackets.
/// </summary>
static class HoconValues
{
    public static string Render(object value) => value switch
    {
        RawHocon raw => raw.Text,
        string s => JsonSerializer.Serialize(s),
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        decimal m => m.ToString(CultureInfo.InvariantCulture),
        int or long or short or byte or uint or ulong => Convert.ToString(value, CultureInfo.InvariantCulture)!,
        Enum e => JsonSerializer.Serialize(e.ToString().ToLowerInvariant()),
        IEnumerable items => "[" + string.Join(", ", items.Cast<object>().Select(Render)) + "]",
        _ => throw new ArgumentException($"cannot write a {value.GetType().Name} as a HOCON value (use a string, number, bool, list or RawHocon)"),
    };

    /// <summary>
    /// One <c>key = value</c> line per entry. Keys are HOCON paths (<c>optimizer.lr</c>); each on its own line, since Akka's
    /// HOCON parser refuses a comma after an object value.
    /// </summary>
    public static void AppendKeys(StringBuilder text, IEnumerable<KeyValuePair<string, object>> keys, string indent)
    {
        foreach (var (key, value) in keys)
            text.Append(indent).Append(key).Append(" = ").Append(Render(value)).Append('\n');
    }

    public static void CheckKey(string key)
    {
        if (string.IsNullOrWhiteSpace(key) || key.Any(c => char.IsWhiteSpace(c) || c is '=' or ':' or '{' or '}' or '[' or ']' or '"' or ',' or '#'))
            throw new ArgumentException($"'{key}' is not a job key (a HOCON path such as optimizer.lr)", nameof(key));
    }
}
