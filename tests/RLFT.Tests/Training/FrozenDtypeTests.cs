using Rlft.Actors.Compute;
using Rlft.Actors.Protocol;
using Rlft.Policy.Generation;
using Rlft.Policy.Lora;
using Rlft.Policy.Training;
using Rlft.Tests.Cluster;
using Rlft.Policy.Models;
using Rlft.Policy.Training.Trainers;
using Rlft.Tests.Policy;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Training;

/// <summary>
/// Frozen copies held in bf16 (<c>model.frozen-dtype = bf16</c>): half the bytes, and teacher-forced log-probs within a
/// stated distance of the fp32 copy's — measured on the tiny policy after SFT on the built-in task (peaked, as a
/// trained model's are) and on seeded models of each decoder family.
/// </summary>
public class FrozenDtypeTests(ITestOutputHelper output)
{
    /// <summary>Mean and largest |log p_bf16 − log p_fp32| over the completion tokens.</summary>
    static (double Mean, double Max) Drift(CausalLM fp32, CausalLM bf16, IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions, int padId)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var a = LogProbs.OfCompletions(fp32, prompts, completions, padId);
        using var b = LogProbs.OfCompletions(bf16, prompts, completions, padId);
        Assert.Equal(ScalarType.Float32, b.LogProbs.dtype);   // log-softmax in fp32 under bf16 weights
        var diff = (a.LogProbs - b.LogProbs).abs() * a.Mask;
        double n = a.Mask.sum().item<float>();
        return (diff.sum().item<float>() / n, diff.max().item<float>());
    }

    [Fact]
    public void A_bf16_frozen_copy_of_a_trained_policy_has_log_probs_within_0_01_nats_on_average()
    {
        var policy = TinyTask.LoadSft();
        var fp32 = policy.FrozenCopy();
        var bf16 = policy.FrozenCopy(ScalarType.BFloat16);
        Assert.All(bf16.Model.parameters(), p => { Assert.Equal(ScalarType.BFloat16, p.dtype); Assert.False(p.requires_grad); });
        Assert.Equal(fp32.Model.parameters().Sum(p => p.numel() * 4), 2 * bf16.Model.parameters().Sum(p => p.numel() * p.ElementSize));
        var data = TinyTask.Sft(64, seed: 9);
        var prompts = data.Select(d => policy.EncodePrompt(d.Item1)).ToList();
        var completions = data.Select(d => policy.Tokenizer.Encode(d.Item2)).ToList();
        var (mean, max) = Drift(fp32.Model, bf16.Model, prompts, completions, policy.Tokenizer.PadId);
        output.WriteLine($"tiny GPT-2 after SFT: mean |Δ log p| {mean:0.00000}, max {max:0.0000} over {completions.Sum(c => c.Length)} tokens");
        // bf16 keeps 8 bits of mantissa: the copy is not the fp32 model, and stays close to it.
        Assert.InRange(mean, 1e-5, 0.01);
        Assert.True(max < 0.1, $"largest drift {max}");
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("gemma3")]
    public void Every_family_computes_in_bf16_with_log_probs_close_to_fp32(string arch)
    {
        using var fp32 = TinyModels.Create(arch);
        using var bf16 = TinyModels.Create(arch);
        PolicyModel.Freeze(bf16, ScalarType.BFloat16);
        var gen = new Generator(5);
        var prompts = Enumerable.Range(0, 8).Select(_ => randint(1, TinyModels.Vocab, [6], generator: gen).data<long>().Select(x => (int)x).ToArray()).ToList();
        var completions = Enumerable.Range(0, 8).Select(_ => randint(1, TinyModels.Vocab, [10], generator: gen).data<long>().Select(x => (int)x).ToArray()).ToList();
        var (mean, max) = Drift(fp32, bf16, prompts, completions, padId: 0);
        output.WriteLine($"{arch}: mean |Δ log p| {mean:0.00000}, max {max:0.0000}");
        Assert.InRange(mean, 1e-5, 0.03);
        Assert.True(max < 0.15, $"largest drift {max}");
    }

    [Fact]
    public void Only_fp32_and_bf16_are_frozen_dtypes()
    {
        var e = Assert.Throws<ArgumentException>(() => PolicyModel.FrozenDtype(ScalarType.Float16));
        Assert.Contains("fp32 or bf16", e.Message);
    }

    [Fact]
    public void A_bf16_rollout_replica_holds_the_published_weights_and_adapters_in_bf16_and_samples()
    {
        var source = TinyTask.Load();
        var files = ModelFiles.Read(TinyTask.ModelDirectory);
        byte[] baseBlob = ModelBlob.Pack(source.Model.state_dict(), files);
        var adapters = LoraAdapters.Apply(source.Model, new LoraConfig { Rank = 4, TargetModules = ["c_attn"] }, seed: 5);
        using (no_grad()) foreach (var p in adapters.Parameters()) p.add_(randn_like(p) * 0.05);
        byte[] adapterBlob = ModelBlob.Pack(adapters.StateDict(), new Dictionary<string, string> { [LoraAdapters.ConfigFile] = adapters.ConfigJson() });
        var job = JobHarness.Job(JobHarness.Sft);
        using var engine = new TorchRolloutEngine(job with { Model = job.Model with { FrozenDtype = ScalarType.BFloat16 } });
        engine.ApplyWeights(1, baseBlob);
        engine.ApplyWeights(2, adapterBlob);
        var replica = engine.Replica!.Model.state_dict();
        foreach (var (name, t) in source.Model.state_dict())
        {
            Assert.Equal(ScalarType.BFloat16, replica[name].dtype);
            Assert.True(t.to(ScalarType.BFloat16).Equals(replica[name]), $"{name} is not the published weight rounded to bf16");
        }
        var samples = engine.Generate([new PromptItem("review the book:", null, 0)], new SamplingSettings(6, 1.0, 0, 1.0), 3);
        Assert.NotEmpty(samples[0].Logprobs);
        Assert.All(samples[0].Logprobs, lp => Assert.True(float.IsFinite(lp) && lp <= 0, $"log-prob {lp}"));
    }
}
