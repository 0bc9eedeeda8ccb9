using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using static TorchSharp.torch;

namespace Rlft.Policy.Memory;

/// <summary>
/// The README's "what fits" table, generated from the estimator (<c>rlft estimate --fits</c>): PPO at the published
/// shapes, batch 8 × (64 prompt + 32 new tokens), one rollout replica, against host memory of 8/16/24 GiB and GPUs of
/// 24/80 GiB. On a GPU the job runs with bf16 compute (precision = auto: mixed precision, or a bf16 base under LoRA), and only
/// what is not host-only counts.
/// </summary>
internal static class FitTable
{
    public static readonly string[] Presets = ["gpt2-124m", "qwen2-0.5b", "llama3-1b", "qwen2-1.5b"];

    static readonly (string Name, Func<MemoryJob, MemoryJob> Apply)[] Modes =
    [
        ("full PPO", j => j),
        ("full PPO, adamw-8bit", EightBit),
        ("full PPO, adamw-8bit, frozen-dtype bf16", j => EightBit(j) with { FrozenDtype = ScalarType.BFloat16 }),
        ("LoRA r16 PPO", j => j with { Lora = new LoraConfig { Rank = 16 } }),
        ("LoRA r16 PPO, frozen-dtype bf16", j => j with { Lora = new LoraConfig { Rank = 16 }, FrozenDtype = ScalarType.BFloat16 }),
        ("LoRA r16 PPO, precision bf16", j => j with { Lora = new LoraConfig { Rank = 16 }, MixedPrecision = true, LoraBf16 = true }),
        ("QLoRA nf4 r16 PPO", j => j with { Lora = new LoraConfig { Rank = 16 }, Quantization = new QuantizationOptions { Kind = QuantizationKind.Nf4 } }),
    ];

    static MemoryJob EightBit(MemoryJob j) => j with { Stages = j.Stages.Select(s => s with { Optimizer = Training.OptimizerKind.AdamW8bit }).ToList() };

    public static IEnumerable<string> Markdown()
    {
        long[] hosts = [8L << 30, 16L << 30, 24L << 30], gpus = [24L << 30, 80L << 30];
        string Mark(long need, long have) => need <= have ? "yes" : "no";
        yield return "| model | job | host estimate | 8 GiB | 16 GiB | 24 GiB | GPU estimate | 24 GiB GPU | 80 GiB GPU |";
        yield return "| --- | --- | --- | --- | --- | --- | --- | --- | --- |";
        foreach (var preset in Presets)
            foreach (var (name, apply) in Modes)
            {
                var job = apply(new MemoryJob
                {
                    Model = PublishedShapes.Config(preset, 0, 0, 1),
                    Stages = [new MemoryStage { Name = "ppo", Kind = MemoryStageKind.Ppo, BatchSize = 8, CompletionTokens = 32 }],
                });
                var cpu = MemoryEstimator.Estimate(job);
                // precision = auto on a GPU: bf16 compute, so a LoRA base is held in bf16.
                var gpu = MemoryEstimator.Estimate(job with { MixedPrecision = !job.Quantization.Enabled, LoraBf16 = job.Lora is not null && !job.Quantization.Enabled });
                yield return $"| {preset} | {name} | {MemoryEstimate.Human(cpu.Total)} | {string.Join(" | ", hosts.Select(h => Mark(cpu.Total, h)))} | "
                    + $"{MemoryEstimate.Human(gpu.DeviceBytes)} | {string.Join(" | ", gpus.Select(g => Mark(gpu.DeviceBytes, g)))} |";
            }
    }
}
