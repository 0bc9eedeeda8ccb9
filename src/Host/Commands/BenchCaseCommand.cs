using System.CommandLine;
using Rlft.Policy.Benchmarks;
using Rlft.Policy.Quantization;
using Rlft.Rollout.Tasks;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft bench-case qlora …` (hidden): one configuration of the qlora benchmark in a process of its own, so that its
/// peak resident memory is its own; prints one JSON line. `rlft bench --only qlora` starts these.
/// </summary>
internal static class BenchCaseCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Required = true };
        var quantize = new Option<string>("--quantize") { DefaultValueFactory = _ => "none" };
        quantize.AcceptOnlyFromAmong("none", "nf4", "int8");
        var doubleQuant = new Option<bool>("--double-quant") { DefaultValueFactory = _ => true };
        var computeDtype = new Option<string>("--compute-dtype") { DefaultValueFactory = _ => "fp32" };
        computeDtype.AcceptOnlyFromAmong("fp32", "bf16");
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 8 };
        var newTokens = new Option<int>("--new-tokens") { DefaultValueFactory = _ => 32 };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 3 };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 1 };
        var checkpointing = new Option<bool>("--checkpointing") { Description = "Gradient checkpointing per block (QLoRA's usual setting)" };
        var qlora = new Command("qlora", "One LoRA PPO configuration of the qlora benchmark.") { model, quantize, doubleQuant, computeDtype, batch, newTokens, steps, epochs, checkpointing };
        qlora.SetAction(result =>
        {
            string kind = result.GetValue(quantize)!;
            var options = new QuantizationOptions
            {
                Kind = kind switch { "nf4" => QuantizationKind.Nf4, "int8" => QuantizationKind.Int8, _ => QuantizationKind.None },
                DoubleQuant = kind == "nf4" && result.GetValue(doubleQuant),
                ComputeDtype = result.GetValue(computeDtype) == "bf16" ? TorchSharp.torch.ScalarType.BFloat16 : TorchSharp.torch.ScalarType.Float32,
            };
            var line = QloraPpoCase.Run(
                new QloraPpoCase.Settings(result.GetValue(model)!, options, result.GetValue(batch), result.GetValue(newTokens), result.GetValue(steps), PpoEpochs: result.GetValue(epochs),
                    Checkpointing: result.GetValue(checkpointing)),
                ReviewTask.ReviewPrompts(64, 1).Select(p => p.Prompt).ToList(), (p, c) => ReviewTask.Score(p, c));
            result.InvocationConfiguration.Output.WriteLine(line.ToJsonString());
            return 0;
        });
        return new Command("bench-case", "One benchmark configuration in its own process (used by rlft bench).") { Hidden = true, Subcommands = { qlora } };
    }
}
