using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Benchmarks;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft device-check [--device cuda] [--shapes gpt2-124m,qwen2-0.5b] [--peak-tflops F] [--output FILE]`: the checks of
/// the accelerator path (<see cref="DeviceCheck"/>), one JSON line each, then one summary line; exit 0 when every check
/// passed, 1 otherwise. scripts/gpu-check.sh runs it on a GPU machine.
/// </summary>
internal static class DeviceCheckCommand
{
    public static Command Create()
    {
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cuda", Description = "cuda, cuda:N or cpu" };
        var shapes = new Option<string>("--shapes") { DefaultValueFactory = _ => "gpt2-124m,qwen2-0.5b", Description = "Published shapes (or size presets) whose train step is timed; empty: none" };
        var peak = new Option<double>("--peak-tflops") { DefaultValueFactory = _ => 989, Description = "The device's dense bf16 peak for MFU (H100/H200 SXM: 989)" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 8 };
        var length = new Option<int>("--length") { DefaultValueFactory = _ => 512 };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 5, Description = "Timed train steps per shape (after one warm-up)" };
        var output = new Option<string?>("--output") { Description = "Also write the lines to this JSONL file" };
        var command = new Command("device-check", "Check the accelerator path: logits against the CPU, bf16 gradients, KV-cache decoding, train-step TFLOP/s and MFU.")
            { device, shapes, peak, batch, length, steps, output };
        command.SetAction(result =>
        {
            var o = new DeviceCheck.Options(result.GetValue(device)!,
                result.GetValue(shapes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                result.GetValue(peak), result.GetValue(batch), result.GetValue(length), result.GetValue(steps));
            using var write = result.GetValue(output) is { } path ? new StreamWriter(path) : null;
            var lines = new List<JsonObject>();
            foreach (var line in DeviceCheck.Run(o))
            {
                lines.Add(line);
                string text = line.ToJsonString();
                result.InvocationConfiguration.Output.WriteLine(text);
                write?.WriteLine(text);
                write?.Flush();
            }
            var failed = lines.Where(l => l["ok"]?.GetValue<bool>() != true).Select(l => (string)l["name"]!).ToList();
            var summary = new JsonObject
            {
                ["name"] = "summary", ["device"] = o.Device, ["checks"] = lines.Count, ["passed"] = lines.Count - failed.Count,
                ["failed"] = new JsonArray(failed.Select(f => (JsonNode)f).ToArray()),
            };
            result.InvocationConfiguration.Output.WriteLine(summary.ToJsonString());
            write?.WriteLine(summary.ToJsonString());
            return failed.Count == 0 ? 0 : 1;
        });
        return command;
    }
}
