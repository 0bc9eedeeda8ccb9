using Rlft.Policy.Encoders;
using Rlft.Policy.Lora;
using Rlft.Policy.Training;
using static TorchSharp.torch;

namespace Rlft.Tests.Encoders;

public class EncoderLoraTests
{
    static readonly LoraConfig Config = new() { Rank = 4, Alpha = 8, TargetModules = ["query", "value", "q_lin", "v_lin", "dense", "lin1"] };

    static Dictionary<string, Tensor> Snapshot(EncoderModel model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    /// <summary>
    /// Training with adapters moves only the adapters and the head (classifier, BERT's pooler; DistilBERT's pre_classifier):
    /// every body weight stays bit-equal, while every adapter B (zero at the start) and every head tensor changes.
    /// </summary>
    [Theory]
    [InlineData("bert")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    public void Only_the_adapters_and_the_head_train(string arch)
    {
        using var model = EncoderTextModel.Load(TinyEncoders.Directory(arch, labels: 2, std: 0.02));
        var adapters = LoraAdapters.Apply(model.Model, Config, seed: 1);
        Assert.Equal("SEQ_CLS", adapters.TaskType);
        // Attention and FFN projections of the body only: the head's own dense layers train in full.
        Assert.All(adapters.Layers, l => Assert.False(model.Model.IsHeadParameter(l.Name + ".weight")));
        Assert.Contains(adapters.Layers, l => l.Name.EndsWith("query", StringComparison.Ordinal) || l.Name.EndsWith("q_lin", StringComparison.Ordinal));
        Assert.Contains(adapters.Layers, l => l.Name.EndsWith("dense", StringComparison.Ordinal) || l.Name.EndsWith("lin1", StringComparison.Ordinal));
        var before = Snapshot(model.Model);
        using var trainer = new ClassifierTrainer(model, new OptimizerOptions { LearningRate = 1e-2, TotalSteps = 3 });
        var data = SentimentData.Generate(16, seed: 1).Select(x => x with { Label = x.Label == "POSITIVE" ? "L1" : "L0" }).ToList();
        for (int i = 0; i < 3; i++) trainer.Step(data);
        foreach (var (name, value) in model.Model.state_dict())
        {
            bool changed = (value - before[name]).abs().max().item<float>() > 0;
            bool trains = name.Contains(".lora_B.", StringComparison.Ordinal) || name.Contains(".lora_A.", StringComparison.Ordinal) || model.Model.IsHeadParameter(name);
            if (trains) Assert.True(changed, $"{name} did not change");
            else Assert.False(changed, $"{name} changed, but the body is frozen");
        }
    }

    /// <summary>
    /// Merging folds (α/r)·B·A into each adapted weight: the merged weight equals the base weight plus the adapter
    /// product computed here in float64, and the merged model's logits equal the adapted model's (within 1e-5).
    /// </summary>
    [Fact]
    public void Merged_weights_are_the_base_plus_the_scaled_adapter_product()
    {
        using var model = EncoderTextModel.Load(TinyEncoders.Directory("bert", labels: 2));
        var adapters = LoraAdapters.Apply(model.Model, Config, seed: 3);
        // B starts at zero (the adapted model equals the base); give it values so the merge has something to fold.
        using (no_grad())
            foreach (var (_, b) in adapters.StateDict().Where(kv => kv.Key.Contains(".lora_B.", StringComparison.Ordinal))) b.normal_(0, 0.1);
        var baseWeights = adapters.Layers.ToDictionary(l => l.Name, l => l.Layer.weight.detach().clone().to(ScalarType.Float64));
        var state = adapters.StateDict();
        var inputs = new[] { ("the movie was great and fun.", (string?)null), ("where does anna live?", "anna lives in paris.") };
        var adapted = model.Logits(inputs);
        adapters.Merge();
        double scale = Config.Alpha / Config.Rank;
        foreach (var (name, layer) in adapters.Layers)
        {
            var b = state[$"{name}.lora_B.weight"].to(ScalarType.Float64);              // (out, r)
            var a = state[$"{name}.lora_A.weight"].to(ScalarType.Float64);              // (r, in)
            var expected = baseWeights[name] + scale * b.matmul(a);                     // (out, in)
            double diff = (layer.weight.to(ScalarType.Float64) - expected).abs().max().item<double>();
            Assert.True(diff < 1e-6, $"{name}: merged weight differs from base + (α/r)·B·A by {diff}");
        }
        var merged = model.Logits(inputs);
        for (int i = 0; i < adapted.Length; i++)
            for (int k = 0; k < adapted[i].Length; k++) Assert.Equal(adapted[i][k], merged[i][k], 1e-5);
        // The adapters did change the function: the merged logits are not the base model's.
        adapters.Unmerge();
        using (adapters.Disabled())
        {
            var plain = model.Logits(inputs);
            Assert.Contains(Enumerable.Range(0, plain.Length), i => Enumerable.Range(0, plain[i].Length).Any(k => Math.Abs(plain[i][k] - merged[i][k]) > 1e-3));
        }
    }
}
