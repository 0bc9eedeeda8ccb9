using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Rollout.Data;

/// <summary>
/// The lines of a JSONL file as strings, checked to be valid UTF-8 line by line (a bad line is reported by number,
/// the others still read). Blank lines are skipped, a UTF-8 byte-order mark and \r\n endings are accepted.
/// </summary>
static class JsonlLines
{
    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>(line number, text) for each non-blank line; text is null when the line is not valid UTF-8.</summary>
    public static IEnumerable<(int Line, string? Text)> Read(string path)
    {
        using var stream = new BufferedStream(File.OpenRead(path), 1 << 16);
        var buffer = new List<byte>(256);
        int lineNo = 0;
        bool first = true;
        while (true)
        {
            int b = stream.ReadByte();
            if (b >= 0 && b != '\n') { buffer.Add((byte)b); continue; }
            if (b < 0 && buffer.Count == 0) yield break;
            lineNo++;
            var bytes = buffer.ToArray();
            buffer.Clear();
            int start = first && bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
            first = false;
            int end = bytes.Length > start && bytes[^1] == '\r' ? bytes.Length - 1 : bytes.Length;
            string? text;
            try { text = Strict.GetString(bytes, start, end - start); }
            catch (DecoderFallbackException) { text = null; }
            if (text is null || !string.IsNullOrWhiteSpace(text)) yield return (lineNo, text);
            if (b < 0) yield break;
        }
    }

    /// <summary>
    /// Every record of a JSONL dataset file and every problem with it, by file and line: each line must be a JSON
    /// object, which <paramref name="read"/> turns into a record (or null, having reported through the line's check).
    /// A missing, unreadable or empty file is a problem too.
    /// </summary>
    public static (List<T> Records, List<string> Errors) Scan<T>(string path, Func<JsonObject, LineCheck, T?> read) where T : class
    {
        var records = new List<T>();
        var errors = new List<string>();
        if (Directory.Exists(path)) return (records, [$"{path}: is a directory, not a dataset file"]);
        if (!File.Exists(path)) return (records, [$"{path}: dataset file not found"]);
        try
        {
            foreach (var (lineNo, text) in Read(path))
            {
                string where = $"{path}:{lineNo}";
                if (text is null) { errors.Add($"{where}: invalid UTF-8"); continue; }
                JsonObject o;
                try
                {
                    if (JsonNode.Parse(text) is not JsonObject obj) { errors.Add($"{where}: expected a JSON object"); continue; }
                    o = obj;
                }
                catch (JsonException e) { errors.Add($"{where}: invalid JSON ({e.Message.Split('.')[0]})"); continue; }
                var line = new LineCheck(where, errors);
                if (read(o, line) is { } record && !line.Failed) records.Add(record);
            }
        }
        catch (IOException e) { errors.Add($"{path}: cannot be read ({e.Message})"); }
        catch (UnauthorizedAccessException) { errors.Add($"{path}: cannot be read (permission denied)"); }
        if (records.Count == 0 && errors.Count == 0) errors.Add($"{path}: no records (an empty dataset)");
        return (records, errors);
    }

    /// <summary>The records of a scan, or its first problem (and how many more) as a <see cref="DatasetException"/>.</summary>
    public static List<T> OrThrow<T>((List<T> Records, List<string> Errors) scan) =>
        scan.Errors.Count == 0 ? scan.Records
        : throw new DatasetException(scan.Errors.Count == 1 ? scan.Errors[0] : $"{scan.Errors[0]} (and {scan.Errors.Count - 1} more problem{(scan.Errors.Count == 2 ? "" : "s")} in the file)");
}
