using Rlft.Actors.Compute;
using Rlft.Actors.Runtime;
using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using Rlft.Policy.Training;
using Rlft.Tests.Training;
using static TorchSharp.torch;

namespace Rlft.Tests.Cluster;

/// <summary>A job on a quantized base through the actors: adapters from the start, the 4-bit base shipped once at its quantized size.</summary>
public sealed class QloraJobTests
{
    const string Qlora = "lora { rank = 4, alpha = 8, target-modules = [c_attn, c_proj, c_fc] }\n model.quantize = nf4";

    [Fact]
    public async Task A_qlora_sft_then_ppo_job_trains_only_adapters_on_a_4_bit_base_that_replicas_receive_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(4)), extra: Qlora + "\n checkpoint-every = 2");
        var engines = new JobHarness.RecordingFactory();
        var (node, finished) = await JobHarness.RunAllRoles(job, engines, ct);
        await using var _ = node;
        Assert.True(finished.Succeeded, finished.Message);
        Assert.Equal(4, finished.Summary["job/batches_trained"]);

        var learner = Assert.Single(engines.Learners);
        var replica = Assert.Single(engines.Rollouts);
        Assert.True(ModelQuantizer.IsQuantized(learner.Policy.Model));
        Assert.True(ModelQuantizer.IsQuantized(replica.Replica!.Model));
        // The base went over once, at the version it was loaded with; SFT and PPO moved adapters only.
        Assert.Equal(0, learner.AdapterBaseVersion);
        Assert.Equal(0, replica.BaseVersion);
        Assert.True(replica.PolicyVersion > 1, $"replica at v{replica.PolicyVersion}");
        var replicaState = replica.Replica.Model.state_dict();
        var baseState = learner.Policy.Model.state_dict().Where(kv => !kv.Key.Contains(".lora_")).ToList();
        Assert.Contains(baseState, kv => kv.Key.EndsWith(".weight_nf4", StringComparison.Ordinal));
        foreach (var (name, t) in baseState) Assert.True(t.Equals(replicaState[name]), $"base tensor {name}: the replica's differs from the learner's");
        // In one process the 4-bit base exists once: the replica reads the learner's codes and scales.
        foreach (var (name, t) in baseState) Assert.True(ParameterSharing.SameStorage(t, replicaState[name]), $"base tensor {name}: the replica holds its own copy");
        Assert.Contains(replica.Adapters!.StateDict(), kv => kv.Key.EndsWith("lora_B.weight") && kv.Value.abs().max().item<float>() > 0);

        // On the wire the base costs its quantized size: codes and scales, plus the full-precision parameters in fp32.
        byte[] blob = learner.ExportAdapterBase();
        var (weights, quantizedBytes, fullPrecision) = ModelQuantizer.Footprint(learner.Policy.Model);
        long expected = quantizedBytes + fullPrecision * 4;
        Assert.InRange(blob.Length, expected, expected + 64 * 1024);                       // + the JSON header and model files
        Assert.True(quantizedBytes < 0.53 * weights, $"{quantizedBytes} bytes for {weights} weights");

        // Checkpoints: the base as it was quantized from (byte for byte) with its settings, the adapters, the stage's reference.
        var checkpoint = Directory.GetDirectories(Path.Combine(job.RunDirectory, "checkpoints")).OrderBy(Directory.GetLastWriteTimeUtc).Last();
        Assert.Equal(File.ReadAllBytes(Path.Combine(job.RunDirectory, "init-model", "model.safetensors")), File.ReadAllBytes(Path.Combine(checkpoint, "policy", "model.safetensors")));
        Assert.Equal(QuantizationKind.Nf4, QuantizationOptions.Load(Path.Combine(checkpoint, "policy"))!.Kind);
        Assert.True(File.Exists(Path.Combine(checkpoint, "policy-adapter", LoraAdapters.WeightsFile)));
        Assert.True(File.Exists(Path.Combine(checkpoint, "trainer", "reference-adapter", LoraAdapters.WeightsFile)));
    }

    [Fact]
    public void A_quantized_base_blob_builds_a_replica_equal_to_the_learner_at_a_fraction_of_the_fp32_bytes()
    {
        var source = TinyTask.Load();
        var files = ModelFiles.Read(TinyTask.ModelDirectory);
        byte[] fp32 = ModelBlob.Pack(source.Model.state_dict(), files);
        var options = new QuantizationOptions { Kind = QuantizationKind.Nf4 };
        ModelQuantizer.Quantize(source.Model, options);
        byte[] nf4 = ModelBlob.Pack(source.Model.state_dict(), QuantizedBase.BlobFiles(files, options));

        var contents = ModelBlob.Unpack(nf4);
        var replica = ModelFiles.Build(contents.Files, CPU, "test");
        ModelBlob.CopyInto(replica.Model, contents.Tensors);
        Assert.True(ModelQuantizer.IsQuantized(replica.Model));
        var mine = replica.Model.state_dict();
        foreach (var (name, t) in source.Model.state_dict()) Assert.True(t.Equals(mine[name]), name);
        var ids = tensor(new long[] { 5, 9, 2, 7 }).unsqueeze(0);
        using (no_grad()) Assert.True(source.Model.Forward(ids).Logits.Equals(replica.Model.Forward(ids).Logits));
        Assert.True(nf4.Length < fp32.Length, $"nf4 blob {nf4.Length} B vs fp32 {fp32.Length} B");
    }
}
