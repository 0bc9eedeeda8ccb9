using System.Text;
using System.Text.Json;

namespace Rlft.Rollout.Data;

/// <summary>The record shapes of the dataset formats (TRL's field names).</summary>
public enum DatasetFormat { Prompts, Sft, Preferences }

/// <summary>A malformed dataset line; the message names the file and line.</summary>
public sealed class DatasetException(string message) : Exception(message);

/// <summary>Reads and writes the JSONL dataset formats (TRL-compatible field names).</summary>
public static class Jsonl
{
    static readonly JsonSerializerOptions Options = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// Reads every non-blank line as <typeparamref name="T"/>, checking that the fields in
    /// <paramref name="required"/> are present strings. Errors name file and line.
    /// </summary>
    public static List<T> Read<T>(string path, params string[] required)
    {
        if (!File.Exists(path)) throw new DatasetException($"dataset not found: {path}");
        var items = new List<T>();
        foreach (var (lineNo, line) in Lines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (LineProblem(doc.RootElement, required) is { } problem) throw new DatasetException($"{path}:{lineNo}: {problem}");
                items.Add(doc.RootElement.Deserialize<T>(Options) ?? throw new DatasetException($"{path}:{lineNo}: empty record"));
            }
            catch (JsonException e)
            {
                throw new DatasetException($"{path}:{lineNo}: invalid JSON ({e.Message.Split('.')[0]})");
            }
        }
        if (items.Count == 0) throw new DatasetException($"{path}: no records");
        return items;
    }

    /// <summary>The fields each kind of dataset needs as strings (other fields are allowed and ignored).</summary>
    public static readonly IReadOnlyDictionary<DatasetFormat, string[]> RequiredFields = new Dictionary<DatasetFormat, string[]>
    {
        [DatasetFormat.Prompts] = ["prompt"],
        [DatasetFormat.Sft] = ["prompt", "completion"],
        [DatasetFormat.Preferences] = ["prompt", "chosen", "rejected"],
    };

    /// <summary>Optional fields that must be strings when present.</summary>
    static readonly string[] OptionalStrings = ["answer"];

    /// <summary>
    /// Checks a whole dataset file without keeping it: every line must be valid UTF-8 and a JSON object with the
    /// fields its format needs. Returns every problem (up to <paramref name="limit"/>, then how many more), each as
    /// <c>file:line: problem</c>; an empty list means the file is usable. Reads the file once, line by line.
    /// </summary>
    public static List<string> Check(string path, DatasetFormat format, int limit = 10)
    {
        var problems = new List<string>();
        if (Directory.Exists(path)) return [$"{path}: is a directory, not a dataset file"];
        if (!File.Exists(path)) return [$"{path}: dataset file not found"];
        int records = 0, more = 0;
        void Add(string problem) { if (problems.Count < limit) problems.Add(problem); else more++; }
        try
        {
            foreach (var (lineNo, line) in Lines(path))
            {
                if (string.IsNullOrWhiteSpace(line)) continue;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    if (LineProblem(doc.RootElement, RequiredFields[format]) is { } problem) Add($"{path}:{lineNo}: {problem}");
                    else records++;
                }
                catch (JsonException e) { Add($"{path}:{lineNo}: invalid JSON ({e.Message.Split('.')[0]})"); }
            }
        }
        catch (DatasetException e) { Add(e.Message); }
        catch (IOException e) { Add($"{path}: cannot be read ({e.Message})"); }
        catch (UnauthorizedAccessException) { Add($"{path}: cannot be read (permission denied)"); }
        if (more > 0) problems.Add($"{path}: ... and {more} more problems");
        if (problems.Count == 0 && records == 0) problems.Add($"{path}: no records (an empty dataset)");
        return problems;
    }

    static string? LineProblem(JsonElement root, string[] required)
    {
        if (root.ValueKind != JsonValueKind.Object) return "expected a JSON object";
        foreach (var field in required)
        {
            if (!root.TryGetProperty(field, out var v)) return $"missing string field \"{field}\"";
            if (v.ValueKind != JsonValueKind.String) return $"field \"{field}\": expected a string, got {Describe(v.ValueKind)}";
        }
        foreach (var field in OptionalStrings)
            if (root.TryGetProperty(field, out var v) && v.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                return $"field \"{field}\": expected a string, got {Describe(v.ValueKind)}";
        return null;
    }

    static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString().ToLowerInvariant(),
    };

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// The file's lines with their numbers, each decoded as strict UTF-8 on its own (so an invalid byte is reported
    /// on its own line, not as a silent U+FFFD). A UTF-8 byte-order mark at the start is skipped, as JSON readers do.
    /// </summary>
    static IEnumerable<(int Number, string Text)> Lines(string path)
    {
        using var stream = new BufferedStream(File.OpenRead(path), 1 << 16);
        var line = new MemoryStream();
        int lineNo = 0;
        while (true)
        {
            int b = stream.ReadByte();
            if (b != '\n' && b != -1) { line.WriteByte((byte)b); continue; }
            if (b == -1 && line.Length == 0) yield break;
            lineNo++;
            var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
            if (lineNo == 1 && bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
            if (bytes.Length > 0 && bytes[^1] == '\r') bytes = bytes[..^1];
            string text;
            try { text = StrictUtf8.GetString(bytes); }
            catch (DecoderFallbackException) { throw new DatasetException($"{path}:{lineNo}: invalid UTF-8"); }
            yield return (lineNo, text);
            line.SetLength(0);
            if (b == -1) yield break;
        }
    }

    public static List<PromptExample> ReadPrompts(string path) => Read<PromptExample>(path, "prompt");
    public static List<SftExample> ReadSft(string path) => Read<SftExample>(path, "prompt", "completion");
    public static List<PreferenceExample> ReadPreferences(string path) => Read<PreferenceExample>(path, "prompt", "chosen", "rejected");

    /// <summary>
    /// Writes all records atomically (a temporary file of this writer's own, then rename): never a half-written dataset,
    /// also when several writers (the learners of a group) write the same dataset at once.
    /// </summary>
    public static void Write<T>(string path, IEnumerable<T> items)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = TemporaryBeside(full);
        using (var w = new StreamWriter(tmp, false, new UTF8Encoding(false)))
            foreach (var item in items) w.WriteLine(JsonSerializer.Serialize(item, Options));
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>A temporary name beside <paramref name="path"/> that no other writer uses.</summary>
    internal static string TemporaryBeside(string path) => $"{path}.{Guid.NewGuid():N}.tmp";
}
