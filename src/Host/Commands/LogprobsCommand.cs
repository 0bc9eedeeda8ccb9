using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Generation;
using static TorchSharp.torch;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft logprobs`: teacher-forced log-probs of completions. Input lines are {"prompt","completion"} (scores the
/// completion's tokens) or {"input_ids":[...]} (scores every token after the first). Every line is validated
/// before anything is written.
/// </summary>
internal static class LogprobsCommand
{
    const int BatchSize = 16;

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (HF layout).", Required = true };
        var input = new Option<string>("--input") { Description = "JSONL file of {\"prompt\",\"completion\"} or {\"input_ids\"} lines.", Required = true };
        var output = new Option<string?>("--output") { Description = "JSONL file to write (default: standard output)." };
        var (quantize, adapter) = ModelCommandSupport.InspectionOptions();
        var command = new Command("logprobs", "Score completions: per-token and summed log-probabilities.") { model, input, output, quantize, adapter };
        command.SetAction(result => ModelCommandSupport.Guard(() =>
        {
            string path = result.GetValue(input)!;
            if (!File.Exists(path)) throw new CliException($"input file not found: {path}");
            var (lm, tokenizer) = ModelCommandSupport.Open(result.GetValue(model)!, result.GetValue(quantize), result.GetValue(adapter));
            using (lm)
            using (tokenizer)
            {
                var items = new List<(int[] Prompt, int[] Scored)>();
                int lineNo = 0;
                foreach (var line in File.ReadLines(path))
                {
                    lineNo++;
                    if (string.IsNullOrWhiteSpace(line)) continue;
                    JsonObject o;
                    try { o = JsonNode.Parse(line) as JsonObject ?? throw new JsonException("not an object"); }
                    catch (JsonException e) { throw new CliException($"{path}:{lineNo}: invalid JSON ({e.Message})"); }
                    if (o["input_ids"] is JsonArray arr)
                    {
                        int[] ids;
                        try { ids = arr.Select(x => x!.GetValue<int>()).ToArray(); }
                        catch (Exception e) when (e is FormatException or InvalidOperationException or NullReferenceException) { throw new CliException($"{path}:{lineNo}: input_ids must be integers"); }
                        if (ids.Length < 2) throw new CliException($"{path}:{lineNo}: input_ids needs at least 2 tokens");
                        if (ids.Any(i => i < 0 || i >= lm.Config.VocabSize)) throw new CliException($"{path}:{lineNo}: input_ids outside the vocabulary [0, {lm.Config.VocabSize})");
                        items.Add((ids[..1], ids[1..]));
                    }
                    else if (o["prompt"] is JsonValue p && p.TryGetValue<string>(out var prompt) && o["completion"] is JsonValue c && c.TryGetValue<string>(out var completion))
                        items.Add(ModelCommandSupport.EncodePair(tokenizer, prompt, completion));
                    else throw new CliException($"{path}:{lineNo}: expected string fields \"prompt\" and \"completion\", or an \"input_ids\" array");
                    if (items[^1].Prompt.Length + items[^1].Scored.Length > lm.Config.MaxPositions)
                        throw new CliException($"{path}:{lineNo}: {items[^1].Prompt.Length + items[^1].Scored.Length} tokens exceed the model's {lm.Config.MaxPositions} positions");
                }
                var lines = Score(lm, items, tokenizer.PadId);
                string? outPath = result.GetValue(output);
                if (outPath is null) foreach (var l in lines) result.InvocationConfiguration.Output.WriteLine(l);
                else
                {
                    File.WriteAllLines(outPath + ".tmp", lines);
                    File.Move(outPath + ".tmp", outPath, overwrite: true);
                }
            }
            return 0;
        }));
        return command;
    }

    static List<string> Score(Rlft.Policy.Models.CausalLM model, List<(int[] Prompt, int[] Scored)> items, int padId)
    {
        var lines = new List<string>(items.Count);
        using var _ = no_grad();
        for (int start = 0; start < items.Count; start += BatchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = items.Skip(start).Take(BatchSize).ToList();
            using var lp = LogProbs.OfCompletions(model, chunk.Select(x => x.Prompt).ToList(), chunk.Select(x => x.Scored).ToList(), padId);
            int c = (int)lp.LogProbs.shape[1];
            var values = lp.LogProbs.cpu().data<float>().ToArray();
            for (int b = 0; b < chunk.Count; b++)
            {
                var scored = chunk[b].Scored;
                var tokenLp = new double[scored.Length];
                for (int j = 0; j < scored.Length; j++) tokenLp[j] = values[b * c + c - scored.Length + j];
                var o = new JsonObject
                {
                    ["tokens"] = new JsonArray(scored.Select(t => (JsonNode)t).ToArray()),
                    ["token_logprobs"] = new JsonArray(tokenLp.Select(v => (JsonNode)v).ToArray()),
                    ["sum_logprob"] = tokenLp.Sum(),
                };
                lines.Add(o.ToJsonString());
            }
        }
        return lines;
    }
}
