using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Encoders;

namespace Rlft.Rollout.Data;

/// <summary>A labelled text with the line it came from (<c>file:line</c>).</summary>
internal sealed record LabelledRecord(string Where, LabelledText Item);

/// <summary>A question-answering example with the line it came from.</summary>
internal sealed record QaRecord(string Where, QaExample Example);

/// <summary>
/// The encoder stages' JSONL formats, read and checked without any model; every problem is one line
/// <c>file:line: field: problem</c>, as <see cref="DatasetFormats"/> reports them.
/// <list type="bullet">
/// <item>classification: <c>{"text", "label"}</c> or <c>{"text", "text_pair", "label"}</c>; the label a string, an integer
/// (its decimal form names it), a number (regression) or a list of strings (multi-label);</item>
/// <item>question answering (SQuAD): <c>{"question", "context", "answers": {"text": [...], "answer_start": [...]}}</c>, every
/// answer found in the context at its offset.</item>
/// </list>
/// </summary>
internal static class EncoderDatasets
{
    /// <summary>The built-in encoder datasets, written from the job seed like the built-in task's.</summary>
    public static readonly string[] ClassificationBuiltins = ["sentiment", "eval-sentiment"];
    public static readonly string[] QaBuiltins = ["qa", "eval-qa"];

    /// <summary>Writes built-in dataset <paramref name="name"/> (one of the lists above) as <paramref name="path"/>.</summary>
    public static void WriteBuiltin(string name, string path, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        IEnumerable<object> lines = name switch
        {
            "sentiment" => SentimentData.Generate(2000, seed).Select(x => (object)new { text = x.Text, label = x.Label }),
            "eval-sentiment" => SentimentData.Generate(256, seed + 1_000_003).Select(x => (object)new { text = x.Text, label = x.Label }),
            "qa" => QaData.Generate(2000, seed).Select(Squad),
            "eval-qa" => QaData.Generate(200, seed + 1_000_003).Select(Squad),
            _ => throw new ArgumentException($"unknown built-in encoder dataset '{name}'"),
        };
        File.WriteAllLines(path + ".tmp", lines.Select(l => JsonSerializer.Serialize(l)));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    static object Squad(QaExample x) => new { question = x.Question, context = x.Context, answers = new { text = x.Answers, answer_start = x.AnswerStarts } };

    /// <summary>The classification records of a file; the first problems are a <see cref="DatasetException"/>.</summary>
    public static List<LabelledRecord> ReadLabelled(string path) => JsonlLines.OrThrow(ScanLabelled(path));

    /// <summary>The QA records of a file; the first problems are a <see cref="DatasetException"/>.</summary>
    public static List<QaRecord> ReadQa(string path) => JsonlLines.OrThrow(ScanQa(path));

    /// <summary>Every record and every problem of a classification file.</summary>
    public static (List<LabelledRecord> Records, List<string> Errors) ScanLabelled(string path) => JsonlLines.Scan(path, (o, line) =>
    {
        string? text = line.String(o, "text");
        string? pair = o.ContainsKey("text_pair") ? line.String(o, "text_pair") : null;
        string? label = Label(o, line);
        return text is null || label is null || line.Failed ? null : new LabelledRecord(line.Where, new LabelledText(text, pair, label));
    });

    /// <summary>Every record and every problem of a SQuAD-style file.</summary>
    public static (List<QaRecord> Records, List<string> Errors) ScanQa(string path) => JsonlLines.Scan(path, (o, line) =>
    {
        string? question = line.String(o, "question"), context = line.String(o, "context");
        if (o["answers"] is not JsonObject answers) return line.Fail<QaRecord>("answers", "missing, or not an object {\"text\": [...], \"answer_start\": [...]}");
        if (answers["text"] is not JsonArray texts || texts.Any(t => t is not JsonValue v || v.GetValueKind() != JsonValueKind.String))
            return line.Fail<QaRecord>("answers.text", "expected a list of strings");
        if (answers["answer_start"] is not JsonArray starts || starts.Any(t => t is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue<int>(out _)))
            return line.Fail<QaRecord>("answers.answer_start", "expected a list of integers");
        if (texts.Count == 0) return line.Fail<QaRecord>("answers.text", "no answer (unanswerable questions, SQuAD 2.0, are not supported)");
        if (texts.Count != starts.Count) return line.Fail<QaRecord>("answers.answer_start", $"{starts.Count} offsets for {texts.Count} answers");
        if (question is null || context is null) return null;
        var a = texts.Select(t => t!.GetValue<string>()).ToList();
        var s = starts.Select(t => t!.GetValue<int>()).ToList();
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i].Length == 0) return line.Fail<QaRecord>($"answers.text[{i}]", "empty");
            if (s[i] < 0 || s[i] + a[i].Length > context.Length || string.CompareOrdinal(context, s[i], a[i], 0, a[i].Length) != 0)
                return line.Fail<QaRecord>($"answers.answer_start[{i}]", $"the context at {s[i]} does not read \"{a[i]}\"");
        }
        return line.Failed ? null : new QaRecord(line.Where, new QaExample(question, context, a, s));
    });

    /// <summary>A label as <see cref="LabelledText.Label"/> holds it: a name, a number's invariant form, or names joined by commas.</summary>
    static string? Label(JsonObject o, LineCheck line)
    {
        if (!o.TryGetPropertyValue("label", out var node)) return line.Fail<string>("label", "missing");
        switch (node)
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                string s = v.GetValue<string>();
                return s.Length == 0 || s.Contains(',') ? line.Fail<string>("label", "a label name must be non-empty and hold no comma") : s;
            case JsonValue v when v.GetValueKind() == JsonValueKind.Number:
                double d = v.GetValue<double>();
                return double.IsFinite(d) ? d.ToString("R", CultureInfo.InvariantCulture) : line.Fail<string>("label", "not a finite number");
            case JsonArray a when a.All(x => x is JsonValue xv && xv.GetValueKind() == JsonValueKind.String && xv.GetValue<string>() is { Length: > 0 } n && !n.Contains(',')):
                return string.Join(",", a.Select(x => x!.GetValue<string>()));
            default:
                return line.Fail<string>("label", "expected a label name, a number, or a list of label names");
        }
    }
}
