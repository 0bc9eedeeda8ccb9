using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Encoders;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft classify --model DIR --input FILE.jsonl [--output FILE.jsonl]`: runs an encoder checkpoint (bert, roberta,
/// distilbert) as transformers' pipelines would. A sequence classifier reads <c>{"text"}</c> or
/// <c>{"text", "text_pair"}</c> lines and writes <c>{"logits": [...], "label": "&lt;id2label&gt;"}</c> (multi-label
/// models add <c>"labels"</c>, every label whose logit is positive); a question-answering model reads
/// <c>{"question", "context"}</c> and writes <c>{"answer", "start", "end", "score"}</c> with character offsets into the
/// context. The directory and every line are checked before anything runs or is written.
/// </summary>
internal static class ClassifyCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Encoder model directory (HF layout) with a sequence-classification or question-answering head.", Required = true };
        var input = new Option<string>("--input") { Description = "JSONL file of {\"text\"}, {\"text\",\"text_pair\"} or (QA models) {\"question\",\"context\"} lines.", Required = true };
        var output = new Option<string?>("--output") { Description = "JSONL file to write (default: standard output)." };
        var batchSize = new Option<int>("--batch-size") { Description = "Lines classified together (default 32).", DefaultValueFactory = _ => 32 };
        var maxLength = new Option<int>("--max-length") { Description = "Tokens per input (QA: per window) at most; longer inputs are truncated (default 512, capped by the position table).", DefaultValueFactory = _ => 512 };
        var maxAnswer = new Option<int>("--max-answer-length") { Description = "QA: longest answer in tokens (default 30).", DefaultValueFactory = _ => 30 };
        var stride = new Option<int>("--doc-stride") { Description = "QA: tokens shared by consecutive windows of a long context (default 128, at most half a window).", DefaultValueFactory = _ => 128 };
        var command = new Command("classify", "Classify texts (or answer questions) with an encoder model; one JSON line out per line in.")
        {
            model, input, output, batchSize, maxLength, maxAnswer, stride,
        };
        command.SetAction(result => ModelCommandSupport.Guard(() =>
        {
            foreach (var (name, value) in new[] { ("--batch-size", result.GetValue(batchSize)), ("--max-length", result.GetValue(maxLength)), ("--max-answer-length", result.GetValue(maxAnswer)) })
                if (value < 1) throw new CliException($"{name}: {value} must be at least 1");
            if (result.GetValue(stride) < 0) throw new CliException($"--doc-stride: {result.GetValue(stride)} must not be negative");
            string dir = result.GetValue(model)!, path = result.GetValue(input)!;
            if (!File.Exists(path)) throw new CliException($"input file not found: {path}");
            var problems = ModelDirectory.CheckEncoder(dir, out var config, exactHead: true);
            // A model without a usable head is named as such before any tensor it carries for another head.
            if (config is not null && config.Task is not (EncoderTask.SequenceClassification or EncoderTask.QuestionAnswering))
                throw new CliException($"{Path.Combine(dir, Checkpoint.ConfigFile)}: architectures is {config.ArchitectureName}; classify runs *ForSequenceClassification and *ForQuestionAnswering models");
            if (problems.Count > 0) throw new CliException(string.Join("; ", problems));
            bool qa = config!.Task == EncoderTask.QuestionAnswering;
            var items = ReadLines(path, qa);

            using var text = EncoderTextModel.Load(dir, maxLength: result.GetValue(maxLength));
            var lines = qa
                ? Answer(text, items, new QaOptions { MaxLength = text.MaxLength, Stride = result.GetValue(stride), MaxAnswerLength = result.GetValue(maxAnswer) })
                : Classify(text, items, result.GetValue(batchSize));
            string? outPath = result.GetValue(output);
            var stdout = result.InvocationConfiguration.Output;
            if (outPath is null)
            {
                foreach (var line in lines) stdout.WriteLine(line);
                return 0;
            }
            // Nothing half-written: the file appears whole or not at all.
            string full = Path.GetFullPath(outPath), temp = full + ".tmp";
            File.WriteAllLines(temp, lines, new UTF8Encoding(false));
            File.Move(temp, full, overwrite: true);
            stdout.WriteLine($"{(qa ? "answered" : "classified")} {lines.Count} lines -> {outPath}");
            return 0;
        }));
        return command;
    }

    /// <summary>The two texts of each line: (text, text_pair) or, for QA, (question, context).</summary>
    static List<(string First, string? Second)> ReadLines(string path, bool qa)
    {
        var items = new List<(string, string?)>();
        int number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new CliException($"{path}:{number}: expected a JSON object"); }
            catch (JsonException e) { throw new CliException($"{path}:{number}: invalid JSON ({e.Message})"); }
            if (qa)
            {
                string question = Field(o, "question", path, number) ?? throw new CliException($"{path}:{number}: missing \"question\" (this is a question-answering model)");
                string context = Field(o, "context", path, number) ?? throw new CliException($"{path}:{number}: missing \"context\" (this is a question-answering model)");
                if (string.IsNullOrWhiteSpace(context)) throw new CliException($"{path}:{number}: \"context\" is empty");
                items.Add((question, context));
            }
            else
            {
                string text = Field(o, "text", path, number) ?? throw new CliException($"{path}:{number}: missing \"text\"");
                items.Add((text, Field(o, "text_pair", path, number)));
            }
        }
        if (items.Count == 0) throw new CliException($"{path}: no lines to classify");
        return items;
    }

    static string? Field(JsonObject o, string key, string path, int line) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => throw new CliException($"{path}:{line}: \"{key}\" must be a string"),
    };

    static List<string> Classify(EncoderTextModel model, List<(string Text, string? Pair)> items, int batchSize)
    {
        var config = model.Model.Config;
        var lines = new List<string>(items.Count);
        foreach (var logits in model.Logits(items, batchSize))
        {
            int best = 0;
            for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
            var o = new JsonObject
            {
                ["logits"] = new JsonArray(logits.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
                ["label"] = config.Labels[best],
            };
            if (config.EffectiveProblem == ProblemType.MultiLabel)
                o["labels"] = new JsonArray(logits.Select((v, i) => (v, i)).Where(x => x.v > 0).Select(x => (JsonNode)JsonValue.Create(config.Labels[x.i])).ToArray());
            lines.Add(o.ToJsonString());
        }
        return lines;
    }

    static List<string> Answer(EncoderTextModel model, List<(string Question, string? Context)> items, QaOptions options) =>
        items.Select(item =>
        {
            var answer = model.Answer(item.Question, item.Context!, options);
            return (answer is null
                ? new JsonObject { ["answer"] = "", ["start"] = 0, ["end"] = 0, ["score"] = 0.0 }
                : new JsonObject { ["answer"] = answer.Text, ["start"] = answer.Start, ["end"] = answer.End, ["score"] = answer.Score }).ToJsonString();
        }).ToList();
}
