using System.Text;
using System.Text.Json;

namespace Rlft.Rollout.Data;

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
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new DatasetException($"{path}:{lineNo}: expected a JSON object");
                foreach (var field in required)
                    if (!doc.RootElement.TryGetProperty(field, out var v) || v.ValueKind != JsonValueKind.String)
                        throw new DatasetException($"{path}:{lineNo}: missing string field \"{field}\"");
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

    public static List<PromptExample> ReadPrompts(string path) => Read<PromptExample>(path, "prompt");
    public static List<SftExample> ReadSft(string path) => Read<SftExample>(path, "prompt", "completion");
    public static List<PreferenceExample> ReadPreferences(string path) => Read<PreferenceExample>(path, "prompt", "chosen", "rejected");

    /// <summary>Writes all records atomically (temporary file, then rename): never a half-written dataset.</summary>
    public static void Write<T>(string path, IEnumerable<T> items)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + ".tmp";
        using (var w = new StreamWriter(tmp, false, new UTF8Encoding(false)))
            foreach (var item in items) w.WriteLine(JsonSerializer.Serialize(item, Options));
        File.Move(tmp, full, overwrite: true);
    }
}
