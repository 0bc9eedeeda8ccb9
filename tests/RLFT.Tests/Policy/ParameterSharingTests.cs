using Rlft.Policy.Models;
using Rlft.Policy.Quantization;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

/// <summary>
/// A model built on the meta device takes another model's tensors as its own parameters without copying them: the
/// storage is the same memory (not merely equal values), and the two compute the same logits.
/// </summary>
public class ParameterSharingTests
{
    static readonly long[][] Tokens = [[1, 5, 9, 14, 3, 7], [2, 8, 8, 40, 11, 6]];

    static Tensor Logits(CausalLM model)
    {
        using var _ = no_grad();
        return model.Forward(tensor(Tokens.SelectMany(t => t).ToArray()).view(2, -1)).Logits;
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void A_meta_model_that_adopts_a_models_tensors_reads_the_same_memory_and_computes_the_same_logits(string arch)
    {
        using var source = TinyModels.Create(arch);
        var state = source.state_dict();
        using var target = ModelFactory.CreateMeta(TinyModels.Config(arch));
        int shared = ParameterSharing.Adopt(target, state, ScalarType.Float32);

        var adopted = target.state_dict();
        Assert.Equal(state.Keys.Order(), adopted.Keys.Order());
        Assert.Equal(adopted.Count, shared);
        foreach (var (name, t) in adopted)
        {
            Assert.True(ParameterSharing.SameStorage(t, state[name]), $"{name} is not the source's memory");
            Assert.False(t.requires_grad);
        }
        Assert.Equal(0, target.parameters().Count(p => p.device_type == TorchSharp.DeviceType.META));
        Assert.True(Logits(source).Equals(Logits(target)));

        // A write through the source is seen by the target: one copy of the weights, not two equal ones.
        using (no_grad()) source.WordEmbeddings.add_(1f);
        Assert.True(Logits(source).Equals(Logits(target)));
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void A_model_built_on_the_meta_device_holds_no_memory_for_its_vocabulary(string arch)
    {
        // 16M tokens × 32 wide: a 1.9 GiB fp32 table, far above what other tests running beside this one allocate.
        // libtorch's Embedding module builds its table on the CPU even when asked for meta, and keeps it.
        var config = TinyModels.Config(arch, vocab: 16_000_000);
        double before = Rlft.Policy.Benchmarks.BenchTiming.ResidentMiB();
        using var model = ModelFactory.CreateMeta(config);
        double grown = Rlft.Policy.Benchmarks.BenchTiming.ResidentMiB() - before;
        Assert.Equal(TorchSharp.DeviceType.META, model.WordEmbeddings.device_type);
        Assert.Equal([16_000_000L, 32L], model.WordEmbeddings.shape);
        Assert.True(grown < 256, $"building the model on the meta device took {grown:F0} MiB");
    }

    [Fact]
    public void Equal_values_in_separate_memory_are_not_the_same_storage()
    {
        using var a = TinyModels.Create("llama");
        using var b = TinyModels.Create("llama");
        var sa = a.state_dict();
        var sb = b.state_dict();
        Assert.All(sa, kv => Assert.True(kv.Value.Equals(sb[kv.Key])));
        Assert.All(sa, kv => Assert.False(ParameterSharing.SameStorage(kv.Value, sb[kv.Key])));
    }

    [Fact]
    public void Adopting_in_another_dtype_makes_cast_copies_and_shares_nothing()
    {
        using var source = TinyModels.Create("qwen2");
        var state = source.state_dict();
        using var target = ModelFactory.CreateMeta(TinyModels.Config("qwen2"));
        Assert.Equal(0, ParameterSharing.Adopt(target, state, ScalarType.BFloat16));
        foreach (var (name, t) in target.state_dict())
        {
            Assert.Equal(ScalarType.BFloat16, t.dtype);
            Assert.True(t.Equals(state[name].to(ScalarType.BFloat16)), name);
        }
    }

    [Fact]
    public void A_quantized_base_is_shared_in_its_4_bit_storage()
    {
        using var source = TinyModels.Create("llama");
        ModelQuantizer.Quantize(source, new QuantizationOptions { Kind = QuantizationKind.Nf4 });
        var state = source.state_dict();
        using var target = ModelFactory.CreateMeta(TinyModels.Config("llama"));
        ParameterSharing.Adopt(target, state, ScalarType.Float32);

        Assert.True(ModelQuantizer.IsQuantized(target));
        var adopted = target.state_dict();
        Assert.Equal(state.Keys.Order(), adopted.Keys.Order());
        Assert.Contains(adopted.Keys, k => k.EndsWith(".weight_nf4"));
        foreach (var (name, t) in adopted) Assert.True(ParameterSharing.SameStorage(t, state[name]), $"{name} is not the source's memory");
        Assert.True(Logits(source).Equals(Logits(target)));
    }

    [Fact]
    public void A_missing_tensor_is_named()
    {
        using var source = TinyModels.Create("gpt2");
        var state = source.state_dict();
        state.Remove("transformer.h.1.mlp.c_fc.weight");
        using var target = ModelFactory.CreateMeta(TinyModels.Config("gpt2"));
        var e = Assert.Throws<InvalidDataException>(() => ParameterSharing.Adopt(target, state, ScalarType.Float32));
        Assert.Contains("transformer.h.1.mlp.c_fc.weight", e.Message);
    }
}
