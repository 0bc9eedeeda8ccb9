using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// JSON in and out with Python's meaning: JSON data becomes template values as <c>json.loads</c> makes them
/// (integers stay ints, key order kept), and <see cref="Dumps"/> is <c>json.dumps</c>, the function behind
/// transformers' <c>tojson</c> filter (<c>ensure_ascii=False</c> by default; separators ", " and ": ").
/// </summary>
internal static class PyJson
{
    /// <summary>A template value from parsed JSON.</summary>
    public static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => FromObject(o),
        JsonArray a => new PyList(a.Select(FromJson).ToList()),
        JsonValue v => FromValue(v),
        _ => throw new ArgumentException($"unexpected JSON node {node.GetType().Name}"),
    };

    static PyDict FromObject(JsonObject o)
    {
        var d = new PyDict();
        foreach (var kv in o) d.Set(kv.Key, FromJson(kv.Value));
        return d;
    }

    static object? FromValue(JsonValue v)
    {
        switch (v.GetValueKind())
        {
            case JsonValueKind.String: return v.GetValue<string>();
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            case JsonValueKind.Null: return null;
            case JsonValueKind.Number:
                string raw = v.ToJsonString();
                if (raw.IndexOfAny(['.', 'e', 'E']) < 0 && long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return l;
                return double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
            default: throw new ArgumentException($"unexpected JSON value {v.GetValueKind()}");
        }
    }

    /// <summary>json.dumps(value, ensure_ascii, indent, separators, sort_keys).</summary>
    internal static string Dumps(object? value, bool ensureAscii = false, string? indent = null, string? itemSeparator = null, string? keySeparator = null, bool sortKeys = false)
    {
        itemSeparator ??= indent is null ? ", " : ",";
        keySeparator ??= ": ";
        var sb = new StringBuilder();
        Write(sb, value, 0, ensureAscii, indent, itemSeparator, keySeparator, sortKeys);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, object? v, int depth, bool ascii, string? indent, string itemSep, string keySep, bool sort)
    {
        switch (v)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FloatJson(d)); break;
            case string s: WriteString(sb, s, ascii); break;
            case PyList list:
                if (list.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    NewLine(sb, indent, depth + 1);
                    Write(sb, list[i], depth + 1, ascii, indent, itemSep, keySep, sort);
                }
                NewLine(sb, indent, depth);
                sb.Append(']');
                break;
            case PyDict dict:
                if (dict.Count == 0) { sb.Append("{}"); break; }
                var entries = dict.Entries.AsEnumerable();
                if (sort) entries = entries.OrderBy(e => e.Key, Comparer<object?>.Create((a, b) => PyOps.Compare(a, b, "<")));
                sb.Append('{');
                bool first = true;
                foreach (var e in entries)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    NewLine(sb, indent, depth + 1);
                    WriteString(sb, KeyString(e.Key), ascii);
                    sb.Append(keySep);
                    Write(sb, e.Value, depth + 1, ascii, indent, itemSep, keySep, sort);
                }
                NewLine(sb, indent, depth);
                sb.Append('}');
                break;
            default:
                throw PyException.Type($"Object of type {PyRepr.TypeName(v)} is not JSON serializable");
        }
    }

    static void NewLine(StringBuilder sb, string? indent, int depth)
    {
        if (indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < depth; i++) sb.Append(indent);
    }

    static string KeyString(object? key) => key switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        null => "null",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatJson(d),
        _ => throw PyException.Type($"keys must be str, int, float, bool or None, not {PyRepr.TypeName(key)}"),
    };

    static string FloatJson(double d) =>
        double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyRepr.Float(d);

    static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7E)) sb.Append($"\\u{(int)c:x4}");
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
