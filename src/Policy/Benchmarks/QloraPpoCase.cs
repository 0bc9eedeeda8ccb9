using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Generation;
using Rlft.Policy.Heads;
using Rlft.Policy.Lora;
using Rlft.Policy.Quantization;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using static TorchSharp.torch;
using static Rlft.Policy.Benchmarks.BenchTiming;

namespace Rlft.Policy.Benchmarks;

/// <summary>
/// One LoRA PPO configuration, meant to run alone in its process so that the peak resident memory is its own: load the
/// model (quantizing at load, or fp32), attach LoRA to the projections a job's <c>lora</c> section targets by default
/// (attention: q, k, v, o) or, with <see cref="Settings.AllProjections"/>, to every projection of the blocks, then
/// steps of generate (one model: the policy samples) → score → PPO update (the reference is the same base with adapters
/// off), returning the C heap's free pages after each step as the learner does. This is what the job fundamentally
/// holds (one frozen base, adapters and their optimizer state, activations); the runtime's own copies (a rollout
/// replica, weight blobs) come on top in <c>rlft run</c>.
/// </summary>
internal static class QloraPpoCase
{
    public sealed record Settings(string ModelDir, QuantizationOptions Quantization, int Batch, int NewTokens, int Steps, int Rank = 16, int PpoEpochs = 1, bool Checkpointing = false, bool AllProjections = false);

    public static readonly string[] BlockProjections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "c_attn", "c_proj", "c_fc", "qkv_proj", "gate_up_proj"];

    /// <summary>Runs the case; <paramref name="prompts"/> are cycled, <paramref name="reward"/> scores (prompt, completion).</summary>
    public static JsonObject Run(Settings s, IReadOnlyList<string> prompts, Func<string, string, double> reward)
    {
        var load = Stopwatch.StartNew();
        using var tokenizer = HfTokenizer.Load(s.ModelDir);
        var model = s.Quantization.Enabled ? ModelQuantizer.Load(s.ModelDir, s.Quantization) : Checkpoint.Load(s.ModelDir);
        model.GradientCheckpointing = s.Checkpointing;
        double loadSeconds = load.Elapsed.TotalSeconds;
        double afterLoad = ResidentMiB();
        var (qWeights, qBytes, fullPrecision) = ModelQuantizer.Footprint(model);
        var policy = new PolicyModel(model, tokenizer);
        var lora = new LoraConfig { Rank = s.Rank, Alpha = 2 * s.Rank };
        if (s.AllProjections) lora = lora with { TargetModules = BlockProjections };
        var adapters = LoraAdapters.Apply(model, lora, seed: 1);
        var value = new ValueHead(model.Config.HiddenSize, 1);
        var ppo = new PpoTrainer(policy, value, new AdapterReference(policy, adapters), new PpoOptions { Epochs = s.PpoEpochs },
            new OptimizerOptions { LearningRate = 1e-4, TotalSteps = Math.Max(1, s.Steps) }, adapters.Parameters(), seed: 1);
        // Random weights rarely sample EOS, and forcing the full length keeps every configuration's work equal.
        var options = new GenerationOptions { MaxNewTokens = s.NewTokens, Temperature = 1.0, StopTokenIds = [-1] };
        var generate = new JsonArray();
        var train = new JsonArray();
        for (int step = 0; step < s.Steps; step++)
        {
            var batch = Enumerable.Range(0, s.Batch).Select(i => prompts[(step * s.Batch + i) % prompts.Count]).ToList();
            var ids = batch.Select(policy.EncodePrompt).ToList();
            var sw = Stopwatch.StartNew();
            GenerationResult result;
            using (var scope = NewDisposeScope())
            {
                model.eval();
                result = TextGenerator.Generate(model, ids, options with { Seed = 100 + step }, tokenizer.PadId, tokenizer.EosId);
            }
            generate.Add(Round(sw.Elapsed.TotalSeconds, 3));
            var experience = batch.Select((p, i) => new Experience(ids[i], result.Tokens[i], result.LogProbs[i], (float)reward(p, tokenizer.Decode(result.Tokens[i])))).ToList();
            sw.Restart();
            ppo.Step(experience);
            train.Add(Round(sw.Elapsed.TotalSeconds, 3));
            Runtime.NativeHeap.Trim();
        }
        double Median(JsonArray a)
        {
            var v = a.Skip(a.Count > 1 ? 1 : 0).Select(x => x!.GetValue<double>()).Order().ToList();   // the first step warms up
            return v[v.Count / 2];
        }
        var line = new JsonObject
        {
            ["quantize"] = QuantizationOptions.KindName(s.Quantization.Kind),
            ["double_quant"] = s.Quantization.Enabled && s.Quantization.DoubleQuant,
            ["compute_dtype"] = s.Quantization.Enabled ? s.Quantization.ResolveComputeDtype(CPU).ToString() : "Float32",
            ["model_type"] = model.Config.ModelType, ["layers"] = model.Config.NumLayers, ["hidden"] = model.Config.HiddenSize,
            ["base_parameters"] = qWeights + fullPrecision,
            ["quantized_weights"] = qWeights,
            ["bytes_per_quantized_weight"] = qWeights > 0 ? Math.Round(qBytes / (double)qWeights, 4) : 4.0,
            ["base_mib"] = Round((qBytes + fullPrecision * 4.0) / (1 << 20), 1),
            ["adapter_parameters"] = adapters.Parameters().Sum(p => p.numel()),
            ["lora_targets"] = s.AllProjections ? "all" : "attention",
            ["batch"] = s.Batch, ["new_tokens"] = s.NewTokens, ["ppo_epochs"] = s.PpoEpochs, ["lora_rank"] = s.Rank,
            ["gradient_checkpointing"] = s.Checkpointing,
            ["load_s"] = Round(loadSeconds, 2), ["rss_after_load_mib"] = Round(afterLoad, 0),
            ["generate_s"] = generate, ["train_s"] = train,
            ["generate_s_median"] = Round(Median(generate), 3), ["train_s_median"] = Round(Median(train), 3),
            ["step_s_median"] = Round(Median(generate) + Median(train), 3),
            ["peak_rss_mib"] = Round(PeakResidentMiB(), 0),
        };
        ppo.Dispose();
        model.Dispose();
        return line;
    }

    /// <summary>The process's peak resident set (VmHWM) in MiB; the current RSS where /proc is not there.</summary>
    public static double PeakResidentMiB()
    {
        try
        {
            foreach (var l in File.ReadLines("/proc/self/status"))
                if (l.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return double.Parse(l[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException) { }
        return ResidentMiB();
    }
}
