using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using Rlft.Tests.Cli;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Memory;

/// <summary>
/// `rlft run` against its own estimate: the peak resident memory of two small jobs, each in a process of its own, is
/// within 25% of the estimated total; a job that cannot fit is refused with both figures before any model exists.
/// </summary>
[Collection(ProcessTests.Name)]
public partial class MemoryEstimateRunTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    [GeneratedRegex(@"peak resident memory .* \((\d+) bytes\); estimate .* \((\d+) bytes\)")]
    private static partial Regex PeakLine();

    /// <summary>A randomly initialised checkpoint of the given shape with the small preset's tokenizer.</summary>
    static string WriteModel(string root, string name, Func<int, int, int, JsonObject> shape)
    {
        string tokDir = Path.Combine(root, name + "-tokenizer"), dir = Path.Combine(root, name);
        ModelPresets.InitTokenizer("small", tokDir);
        using var tok = HfTokenizer.Load(tokDir);
        var config = ModelConfig.Parse(shape(tok.VocabSize, tok.EosId, tok.PadId));
        Checkpoint.SaveInitialized(config, dir, seed: 1, tokDir);
        return dir;
    }

    static string PpoJob(string root, string name, string model, string extra)
    {
        string path = Path.Combine(root, name + ".conf");
        File.WriteAllText(path, $$"""
            rlft.job {
              name = {{name}}
              seed = 1
              eval-prompts = 8
              output-dir = "{{Path.Combine(root, "runs")}}"
              model { path = "{{model}}" }
              {{extra}}
              stages = [
                { kind = ppo, data = "builtin:prompts", steps = 2, batch-size = 8
                  sampling { max-new-tokens = 32 }
                  ppo { epochs = 1 }
                  rewards { sources = [ { type = task, weight = 1.0 } ] }
                }
              ]
            }
            """);
        return path;
    }

    async Task<(long Peak, long Estimate)> RunAndMeasure(string job)
    {
        using var p = await RlftProcess.StartAsync(["run", job], "rlft: job", Ct);
        await p.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(4), Ct);
        output.WriteLine($"--- rlft run {job} (exit {p.Process.ExitCode})\n{p.Log}");
        Assert.Equal(0, p.Process.ExitCode);
        var m = PeakLine().Match(p.Log);
        Assert.True(m.Success, "rlft run printed no peak memory line");
        return (long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task The_estimate_of_two_small_jobs_is_within_a_quarter_of_their_measured_peak()
    {
        if (!File.Exists("/proc/self/status")) Assert.Skip("the peak resident set is read from /proc");
        string root = Directory.CreateTempSubdirectory("rlft-memory").FullName;
        try
        {
            // Full fine-tuning of a GPT-2 shape (14M parameters) and LoRA on a Qwen2 shape (24M, grouped KV heads).
            string gpt2 = WriteModel(root, "gpt2", (vocab, eos, pad) => new JsonObject
            {
                ["model_type"] = "gpt2", ["vocab_size"] = vocab, ["n_embd"] = 384, ["n_layer"] = 8, ["n_head"] = 6, ["n_positions"] = 256,
                ["bos_token_id"] = eos, ["eos_token_id"] = eos, ["pad_token_id"] = pad,
            });
            string qwen2 = WriteModel(root, "qwen2", (vocab, eos, pad) => new JsonObject
            {
                ["model_type"] = "qwen2", ["vocab_size"] = vocab, ["hidden_size"] = 512, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8,
                ["num_key_value_heads"] = 2, ["intermediate_size"] = 1536, ["max_position_embeddings"] = 256, ["tie_word_embeddings"] = true,
                ["bos_token_id"] = eos, ["eos_token_id"] = eos, ["pad_token_id"] = pad,
            });
            foreach (var job in new[] { PpoJob(root, "full-gpt2", gpt2, ""), PpoJob(root, "lora-qwen2", qwen2, "lora { rank = 16 }") })
            {
                var (peak, estimate) = await RunAndMeasure(job);
                double error = (double)(estimate - peak) / peak;
                output.WriteLine($"{Path.GetFileName(job)}: peak {peak >> 20} MiB, estimate {estimate >> 20} MiB ({error:+0.0%;-0.0%})");
                Assert.InRange(error, -0.25, 0.25);
            }
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public async Task A_job_that_cannot_fit_is_refused_with_the_figures_before_any_model_is_written()
    {
        string root = Directory.CreateTempSubdirectory("rlft-nofit").FullName;
        try
        {
            string job = Path.Combine(root, "big.conf");
            File.WriteAllText(job, $$"""
                rlft.job {
                  name = big
                  output-dir = "{{Path.Combine(root, "runs")}}"
                  model { preset = "qwen2-1.5b" }
                  stages = [ { kind = ppo, data = "builtin:prompts", steps = 3, batch-size = 8, sampling { max-new-tokens = 32 } } ]
                }
                """);
            var limit = new Dictionary<string, string> { ["RLFT_MEMORY_LIMIT"] = "4G" };
            using var p = await RlftProcess.StartAsync(["run", job], "rlft: memory estimate", Ct, limit);
            await p.Process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(1), Ct);
            output.WriteLine(p.Log);
            Assert.Equal(2, p.Process.ExitCode);
            var refusal = p.Log.Split('\n').Single(l => l.Contains("by estimate", StringComparison.Ordinal));
            Assert.Matches(@"needs about \d+(\.\d+)? GiB by estimate \(largest stage 0-ppo\), and 4\.00 GiB is available here \(RLFT_MEMORY_LIMIT\)", refusal);
            Assert.Contains("--force", refusal);
            // Refused before anything is written: no run directory, no init-model weights.
            Assert.False(Directory.Exists(Path.Combine(root, "runs")));
            Assert.DoesNotContain("   at ", p.Log);
        }
        finally { Directory.Delete(root, true); }
    }
}
