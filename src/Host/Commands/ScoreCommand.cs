using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Actors.Configuration;
using Rlft.Reward;
using Rlft.Reward.Pipeline;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft score --rewards SPEC.conf --input FILE.jsonl [--output FILE]`: runs a reward spec over
/// prompt/completion lines and prints every component and the total, one JSON object per input line,
/// so reward functions can be debugged before a run.
/// </summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var rewards = new Option<string>("--rewards") { Description = "HOCON reward spec (a `rewards { components = [...] }` section)", Required = true };
        var input = new Option<string>("--input") { Description = "JSONL lines {\"prompt\", \"completion\", \"answer\"?}", Required = true };
        var output = new Option<string?>("--output") { Description = "Write the scored lines here instead of standard output" };
        var batchSize = new Option<int>("--batch-size") { Description = "Lines scored together (batch normalisation works per batch)", DefaultValueFactory = _ => 64 };
        var command = new Command("score", "Score prompt/completion lines with a reward spec and print each component and the total.")
        {
            rewards, input, output, batchSize,
        };
        command.SetAction(async (result, ct) =>
        {
            var stdout = result.InvocationConfiguration.Output;
            var stderr = result.InvocationConfiguration.Error;
            try
            {
                return await RunAsync(result.GetValue(rewards)!, result.GetValue(input)!, result.GetValue(output), result.GetValue(batchSize), stdout, ct);
            }
            catch (Exception e) when (e is CliException or ConfigException)
            {
                // Reported here: System.CommandLine's default exception handler catches what an action throws before Cli.Run can.
                stderr.WriteLine($"rlft: {e.Message}");
                return e is CliException c ? c.ExitCode : 1;
            }
        });
        return command;
    }

    static async Task<int> RunAsync(string specPath, string inputPath, string? outputPath, int batchSize, TextWriter stdout, CancellationToken ct)
    {
        if (batchSize < 1) throw new CliException($"--batch-size: {batchSize} must be at least 1");
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        var pipeline = RewardSpecReader.Build(RlftConfig.LoadFile(specPath), new RewardEnvironment { Http = http, Functions = BuiltinTaskFunctions() });
        var samples = ReadSamples(inputPath);

        var lines = new List<string>(samples.Count);
        int dropped = 0;
        for (int start = 0; start < samples.Count; start += batchSize)
        {
            var batch = samples.Skip(start).Take(batchSize).ToList();
            var scored = await pipeline.ScoreAsync(batch.Select(b => b.Sample).ToList(), ct);
            for (int i = 0; i < batch.Count; i++)
            {
                lines.Add(Format(batch[i].Line, scored.Samples[i]));
                if (scored.Samples[i].Dropped) dropped++;
            }
        }

        if (outputPath is null)
        {
            foreach (var line in lines) stdout.WriteLine(line);
            return 0;
        }
        // Nothing half-written: the file appears whole or not at all.
        string full = Path.GetFullPath(outputPath);
        string temp = full + ".tmp";
        await File.WriteAllLinesAsync(temp, lines, new UTF8Encoding(false), ct);
        File.Move(temp, full, overwrite: true);
        stdout.WriteLine($"scored {lines.Count} lines ({dropped} dropped) -> {outputPath}");
        return 0;
    }

    sealed record InputLine(int Line, RewardSample Sample);

    static List<InputLine> ReadSamples(string path)
    {
        if (!File.Exists(path)) throw new CliException($"input file not found: {path}");
        var samples = new List<InputLine>();
        int number = 0;
        foreach (var text in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonObject obj;
            try { obj = JsonNode.Parse(text) as JsonObject ?? throw new CliException($"{path}:{number}: expected a JSON object"); }
            catch (JsonException e) { throw new CliException($"{path}:{number}: invalid JSON: {e.Message}"); }
            string prompt = Field(obj, "prompt", path, number) ?? throw new CliException($"{path}:{number}: missing \"prompt\"");
            string completion = Field(obj, "completion", path, number) ?? throw new CliException($"{path}:{number}: missing \"completion\"");
            samples.Add(new InputLine(number, new RewardSample(prompt, completion, Field(obj, "answer", path, number))));
        }
        if (samples.Count == 0) throw new CliException($"{path}: no lines to score");
        return samples;
    }

    /// <summary>A string field; numbers are accepted for "answer" (e.g. 42) and kept in their written form.</summary>
    static string? Field(JsonObject obj, string key, string path, int line) => obj[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when key == "answer" && v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
        _ => throw new CliException($"{path}:{line}: \"{key}\" must be a string"),
    };

    static string Format(int line, ScoredSample s)
    {
        var components = new JsonObject();
        foreach (var c in s.Components)
        {
            var o = new JsonObject { ["raw"] = c.Raw, ["value"] = c.Value, ["weighted"] = c.Weighted };
            if (c.Failure is not null) o["failure"] = c.Failure;
            components[c.Name] = o;
        }
        var result = new JsonObject { ["line"] = line, ["total"] = s.Total, ["components"] = components };
        if (s.DroppedReason is not null) result["dropped"] = s.DroppedReason;
        return result.ToJsonString();
    }

    /// <summary>The registry with the built-in task's reward (<c>function = review-task</c>) added.</summary>
    internal static Rlft.Reward.Sources.RewardFunctionRegistry BuiltinTaskFunctions() =>
        Rlft.Reward.Sources.RewardFunctionRegistry.WithBuiltIns()
            .Register("review-task", s => Rlft.Rollout.Tasks.ReviewTask.Score(s.TaskText, s.Completion, s.Reference));
}
