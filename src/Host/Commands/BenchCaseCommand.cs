using System.CommandLine;
using Rlft.Policy.Benchmarks;
using Rlft.Policy.Quantization;
using Rlft.Rollout.Tasks;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft bench-case qlora|job …` (hidden): one configuration of the qlora or the scale-jobs benchmark in a process of
/// its own, so that its peak resident memory is its own; prints one JSON line. `rlft bench --only qlora` and
/// `rlft bench --only scale-jobs` start these.
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
        var allProjections = new Option<bool>("--all-projections") { Description = "LoRA on every projection of the blocks (default: attention, as a job's lora section)" };
        var qlora = new Command("qlora", "One LoRA PPO configuration of the qlora benchmark.") { model, quantize, doubleQuant, computeDtype, batch, newTokens, steps, epochs, checkpointing, allProjections };
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
                    Checkpointing: result.GetValue(checkpointing), AllProjections: result.GetValue(allProjections)),
                ReviewTask.ReviewPrompts(64, 1).Select(p => p.Prompt).ToList(), (p, c) => ReviewTask.Score(p, c));
            result.InvocationConfiguration.Output.WriteLine(line.ToJsonString());
            return 0;
        });
        return new Command("bench-case", "One benchmark configuration in its own process (used by rlft bench).") { Hidden = true, Subcommands = { qlora, Job(), Learner() } };
    }

    /// <summary>`rlft bench-case job`: one configuration of the scale-jobs bench as `rlft run` runs it (<see cref="Bench.ScaleJobCase"/>).</summary>
    static Command Job()
    {
        var model = new Option<string>("--model") { Required = true, Description = "A checkpoint directory (rlft init-model --preset ...)" };
        var kind = new Option<string>("--kind") { Required = true };
        kind.AcceptOnlyFromAmong(Bench.ScaleJobCase.Kinds);
        var mode = new Option<string>("--mode") { DefaultValueFactory = _ => "full" };
        mode.AcceptOnlyFromAmong("full", "lora");
        var checkpointing = new Option<bool>("--checkpointing") { Description = "gradient-checkpointing = on" };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 3 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 8 };
        var newTokens = new Option<int>("--new-tokens") { DefaultValueFactory = _ => 32 };
        var job = new Command("job", "One configuration of the scale-jobs benchmark: a real job through rlft run.") { model, kind, mode, checkpointing, steps, batch, newTokens };
        job.SetAction(result =>
        {
            string dir = result.GetValue(model)!;
            if (!File.Exists(Path.Combine(dir, "config.json"))) throw new CliException($"--model {dir}: no config.json there");
            var line = Bench.ScaleJobCase.Run(new Bench.ScaleJobCase.Settings(dir, result.GetValue(kind)!, result.GetValue(mode) == "lora", result.GetValue(checkpointing),
                result.GetValue(steps), result.GetValue(batch), result.GetValue(newTokens)), Path.GetTempPath());
            result.InvocationConfiguration.Output.WriteLine(line.ToJsonString());
            return line.ContainsKey("error") ? 1 : 0;
        });
        return job;
    }

    /// <summary>`rlft bench-case learner`: one member of a learner group in a process of its own (<see cref="Bench.LearnersBenchmark"/>).</summary>
    static Command Learner()
    {
        var rank = new Option<int>("--rank") { Required = true };
        var endpoints = new Option<string>("--endpoints") { Required = true, Description = "host:port of every member, by rank" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 1 };
        var quick = new Option<bool>("--quick");
        var learner = new Command("learner", "One member of the learners bench's process group.") { rank, endpoints, threads, quick };
        learner.SetAction(result =>
        {
            var line = Bench.LearnersBenchmark.ProcessMember(result.GetValue(rank), result.GetValue(endpoints)!.Split(','), result.GetValue(threads), result.GetValue(quick));
            result.InvocationConfiguration.Output.WriteLine(line.ToJsonString());
            return 0;
        });
        return learner;
    }
}
