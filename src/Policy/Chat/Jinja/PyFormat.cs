using System.Globalization;
using System.Text;

namespace Rlft.Policy.Chat.Jinja;

/// <summary>Python's <c>"%s" % value</c> formatting (the conversions templates use) and <c>strftime</c>.</summary>
static class PyFormat
{
    public static string Percent(string format, object? args)
    {
        var values = args is PyList { IsTuple: true } t ? t.Items : [args];
        var sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%') { sb.Append(c); continue; }
            if (++i >= format.Length) throw PyException.Value("incomplete format");
            int? precision = null;
            if (format[i] == '.')
            {
                int j = ++i;
                while (i < format.Length && char.IsAsciiDigit(format[i])) i++;
                precision = int.Parse(format[j..i], CultureInfo.InvariantCulture);
                if (i >= format.Length) throw PyException.Value("incomplete format");
            }
            char conv = format[i];
            if (conv == '%') { sb.Append('%'); continue; }
            if (next >= values.Count) throw PyException.Type("not enough arguments for format string");
            object? v = values[next++];
            sb.Append(conv switch
            {
                's' => PyRepr.Str(v),
                'r' => PyRepr.Repr(v),
                'd' or 'i' => v switch
                {
                    long l => l.ToString(CultureInfo.InvariantCulture),
                    bool b => b ? "1" : "0",
                    double d => Math.Truncate(d).ToString("0", CultureInfo.InvariantCulture),
                    _ => throw PyException.Type($"%{conv} format: a real number is required, not {PyRepr.TypeName(v)}"),
                },
                'f' => v switch
                {
                    long or double or bool => Convert.ToDouble(v is bool b2 ? (b2 ? 1 : 0) : v, CultureInfo.InvariantCulture).ToString("F" + (precision ?? 6), CultureInfo.InvariantCulture),
                    _ => throw PyException.Type($"must be real number, not {PyRepr.TypeName(v)}"),
                },
                _ => throw PyException.Unsupported($"the %{conv} conversion is not supported"),
            });
        }
        if (next < values.Count && args is PyList { IsTuple: true }) throw PyException.Type("not all arguments converted during string formatting");
        return sb.ToString();
    }

    static readonly string[] Days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    static readonly string[] Months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    /// <summary>datetime.strftime with the C locale, for the directives chat templates use (%d %b %Y …).</summary>
    public static string Strftime(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char d = format[++i];
            sb.Append(d switch
            {
                'Y' => t.Year.ToString("0000", CultureInfo.InvariantCulture),
                'y' => (t.Year % 100).ToString("00", CultureInfo.InvariantCulture),
                'm' => t.Month.ToString("00", CultureInfo.InvariantCulture),
                'd' => t.Day.ToString("00", CultureInfo.InvariantCulture),
                'H' => t.Hour.ToString("00", CultureInfo.InvariantCulture),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", CultureInfo.InvariantCulture),
                'M' => t.Minute.ToString("00", CultureInfo.InvariantCulture),
                'S' => t.Second.ToString("00", CultureInfo.InvariantCulture),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => t.DayOfYear.ToString("000", CultureInfo.InvariantCulture),
                'B' => Months[t.Month - 1],
                'b' => Months[t.Month - 1][..3],
                'A' => Days[(int)t.DayOfWeek],
                'a' => Days[(int)t.DayOfWeek][..3],
                'w' => ((int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                '%' => "%",
                _ => throw PyException.Unsupported($"the strftime directive %{d} is not supported"),
            });
        }
        return sb.ToString();
    }
}
