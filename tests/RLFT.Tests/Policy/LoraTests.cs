using Rlft.Policy.Generation;
using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Policy;

public class LoraTests
{
    // A fresh tensor per use: a static one would die with whichever dispose scope first touched it.
    static Tensor Ids => tensor(new long[] { 4, 8, 15, 16, 23, 42, 7, 1 }).unsqueeze(0);

    static Tensor Logits(CausalLM model)
    {
        using var _ = no_grad();
        using var o = model.Forward(Ids);
        return o.Logits.clone();
    }

    static void Train(CausalLM model, LoraAdapters adapters, int steps)
    {
        model.train();
        var opt = optim.AdamW(adapters.Parameters(), lr: 0.05);
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            var loss = -LogProbs.OfSequences(model, Ids, null).mean();
            loss.backward();
            opt.step();
        }
        model.eval();
    }

    [Theory]
    [InlineData("llama", new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" })]
    [InlineData("gpt2", new[] { "c_attn", "c_proj", "c_fc" })]
    public void Adapters_start_at_the_base_train_alone_and_merge_disable_consistently(string arch, string[] targets)
    {
        using var model = TinyModels.Create(arch, std: 0.05);
        var baseLogits = Logits(model);
        var baseParams = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var adapters = LoraAdapters.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = targets }, seed: 2);
        Assert.Equal(arch == "llama" ? 14 : 8, adapters.Layers.Count);
        Assert.True(baseLogits.Equals(Logits(model)));   // B = 0: identical at initialisation

        Train(model, adapters, 3);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.Contains(".lora_")) Assert.False(p.detach().Equals(name.Contains("lora_B") ? zeros_like(p) : p.detach() + 1), name);
            else Assert.True(p.detach().Equals(baseParams[name]), $"{name} changed");
        }
        foreach (var (name, layer) in adapters.Layers) Assert.True(layer.lora_B!.weight!.abs().sum().item<float>() > 0, $"{name}.lora_B did not train");

        var adapted = Logits(model);
        Assert.False(adapted.allclose(baseLogits, 1e-4, 1e-4));
        using (adapters.Disabled()) Assert.True(baseLogits.Equals(Logits(model)));
        Assert.True(adapted.Equals(Logits(model)));
        adapters.Merge();
        Assert.True(adapted.allclose(Logits(model), 1e-5, 1e-5));
        Assert.Throws<InvalidOperationException>(() => adapters.Disabled());
        adapters.Unmerge();
        Assert.True(adapted.allclose(Logits(model), 1e-5, 1e-5));
    }

    [Fact]
    public void Adapters_save_and_load_in_peft_layout()
    {
        using var model = TinyModels.Create("llama", std: 0.05);
        var adapters = LoraAdapters.Apply(model, new LoraConfig { Rank = 2, TargetModules = ["q_proj", "v_proj"] });
        Train(model, adapters, 2);
        var adapted = Logits(model);
        string dir = TinyModels.TempDir();
        adapters.Save(dir);
        var header = Rlft.Policy.Checkpoints.SafetensorsFile.ReadHeader(Path.Combine(dir, LoraAdapters.WeightsFile));
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", header.Select(kv => kv.Key));
        Assert.Contains("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", header.Select(kv => kv.Key));
        Assert.Equal(9, header.Count);   // 2 layers × 2 targets × (A, B) + __metadata__
        var cfg = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, LoraAdapters.ConfigFile)))!;
        Assert.Equal("LORA", cfg["peft_type"]!.GetValue<string>());
        Assert.Equal(2, cfg["r"]!.GetValue<int>());

        using var fresh = TinyModels.Create("llama", std: 0.05);
        LoraAdapters.Load(fresh, dir);
        Assert.True(adapted.Equals(Logits(fresh)));
    }

    /// <summary>
    /// LoRA with bf16 compute: a bf16 base with fp32 adapters (PEFT's layout) trains the adapters with the gradients
    /// an fp32 computation on the same (bf16-rounded) base gives, to bf16's precision; the adapters stay fp32.
    /// </summary>
    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Adapters_on_a_bf16_base_get_the_fp32_gradients_to_bf16_precision(string arch)
    {
        using var reference = TinyModels.Create(arch, std: 0.05);
        using var bf16 = TinyModels.Create(arch, std: 0.05);
        using (no_grad())
            foreach (var (p, q) in reference.parameters().Zip(bf16.parameters())) { p.copy_(p.to(ScalarType.BFloat16)); q.copy_(p); }
        bf16.to(ScalarType.BFloat16);
        var config = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = arch == "llama" ? ["q_proj", "v_proj", "down_proj"] : ["c_attn", "c_fc"] };
        var a32 = LoraAdapters.Apply(reference, config, seed: 3);
        var a16 = LoraAdapters.Apply(bf16, config, seed: 3);
        using (no_grad())   // B nonzero, so every adapter's branch contributes to the output
            foreach (var (p, q) in a32.Parameters().Zip(a16.Parameters())) { if (p.shape[0] > 4) { p.normal_(0, 0.05); q.copy_(p); } }
        Assert.All(a16.Parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));

        Tensor[] Grads(CausalLM model, LoraAdapters adapters)
        {
            using var scope = NewDisposeScope();
            var loss = -LogProbs.OfSequences(model, Ids, null).mean();
            Assert.Equal(ScalarType.Float32, loss.dtype);
            loss.backward();
            return adapters.Parameters().Select(p => p.grad!.clone().MoveToOuterDisposeScope()).ToArray();
        }
        var g32 = Grads(reference, a32);
        var g16 = Grads(bf16, a16);
        for (int i = 0; i < g32.Length; i++)
        {
            Assert.Equal(ScalarType.Float32, g16[i].dtype);
            double rel = (g16[i] - g32[i]).norm().item<float>() / Math.Max(1e-12, g32[i].norm().item<float>());
            Assert.True(rel < 0.05, $"adapter tensor {i}: bf16-compute gradient differs by {rel:G3} (relative) from fp32's");
        }
        // The base stays bf16 and untouched by the backward.
        Assert.All(bf16.named_parameters().Where(p => !p.name.Contains(".lora_")), p => { Assert.Equal(ScalarType.BFloat16, p.parameter.dtype); Assert.Null(p.parameter.grad); });
    }
    [Fact]
    public void A_frozen_copy_computes_what_the_adapted_model_computes_and_the_base_alone_on_request()
    {
        using var scope = NewDisposeScope();
        var policy = Rlft.Tests.Training.TinyTask.Load();                    // GPT-2: its Conv1D layers hold W transposed
        var model = policy.Model;
        var baseLogits = Logits(model);
        var adapters = LoraAdapters.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["c_attn", "c_fc"] }, seed: 2);
        Train(model, adapters, 3);
        var adapted = Logits(model);
        var copy = policy.FrozenCopy();
        var plain = policy.FrozenCopy(adapters: false);
        try
        {
            Assert.DoesNotContain(copy.Model.state_dict().Keys, k => k.Contains("lora_"));
            Assert.True(Logits(copy.Model).allclose(adapted, 1e-4, 1e-5), "the copy does not compute what the adapted model does");
            Assert.False(adapted.allclose(baseLogits, 1e-3, 1e-3));
            Assert.True(Logits(plain.Model).allclose(baseLogits, 1e-6, 1e-6), "the base-only copy is not the base");
            using (adapters.Disabled())
            {
                var off = policy.FrozenCopy();
                Assert.True(Logits(off.Model).allclose(baseLogits, 1e-6, 1e-6), "adapters switched off are folded in");
                off.Model.Dispose();
            }
        }
        finally { copy.Model.Dispose(); plain.Model.Dispose(); model.Dispose(); }
    }
}
