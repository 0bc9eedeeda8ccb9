using Rlft.Policy.Checkpoints;
using Rlft.Policy.Encoders;
using Rlft.Policy.Tokenization;
using static TorchSharp.torch;

namespace Rlft.Tests.Encoders;

public class EncoderModelTests
{
    static EncoderConfig Config(string arch, EncoderTask task, int labels = 3) =>
        EncoderPresets.Config(arch, "tiny", 100, task, task == EncoderTask.QuestionAnswering ? ["start", "end"] : Enumerable.Range(0, labels).Select(i => $"L{i}").ToList());

    [Theory]
    [InlineData("bert", nameof(EncoderTask.SequenceClassification))]
    [InlineData("roberta", nameof(EncoderTask.SequenceClassification))]
    [InlineData("distilbert", nameof(EncoderTask.SequenceClassification))]
    [InlineData("bert", nameof(EncoderTask.QuestionAnswering))]
    [InlineData("roberta", nameof(EncoderTask.TokenClassification))]
    [InlineData("distilbert", nameof(EncoderTask.QuestionAnswering))]
    public void Parameter_names_and_shapes_are_the_HF_layout(string arch, string taskName)
    {
        var task = Enum.Parse<EncoderTask>(taskName);
        var c = Config(arch, task);
        using var model = EncoderCheckpoint.CreateMeta(c);
        var shapes = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        long h = 64, inter = 256, v = 100, labels = task == EncoderTask.QuestionAnswering ? 2 : 3;
        var expected = new Dictionary<string, long[]>
        {
            [$"{arch}.embeddings.word_embeddings.weight"] = [v, h],
            [$"{arch}.embeddings.position_embeddings.weight"] = [arch == "roberta" ? 130 : 128, h],
            [$"{arch}.embeddings.LayerNorm.weight"] = [h],
            [$"{arch}.embeddings.LayerNorm.bias"] = [h],
        };
        if (arch != "distilbert") expected[$"{arch}.embeddings.token_type_embeddings.weight"] = [arch == "roberta" ? 1 : 2, h];
        for (int i = 0; i < 2; i++)
        {
            void Add(string key, params long[] shape) => expected[key] = shape;
            if (arch == "distilbert")
            {
                string l = $"distilbert.transformer.layer.{i}.";
                foreach (var lin in new[] { "q_lin", "k_lin", "v_lin", "out_lin" }) { Add($"{l}attention.{lin}.weight", h, h); Add($"{l}attention.{lin}.bias", h); }
                foreach (var ln in new[] { "sa_layer_norm", "output_layer_norm" }) { Add($"{l}{ln}.weight", h); Add($"{l}{ln}.bias", h); }
                Add($"{l}ffn.lin1.weight", inter, h); Add($"{l}ffn.lin1.bias", inter); Add($"{l}ffn.lin2.weight", h, inter); Add($"{l}ffn.lin2.bias", h);
            }
            else
            {
                string l = $"{arch}.encoder.layer.{i}.";
                foreach (var lin in new[] { "query", "key", "value" }) { Add($"{l}attention.self.{lin}.weight", h, h); Add($"{l}attention.self.{lin}.bias", h); }
                Add($"{l}attention.output.dense.weight", h, h); Add($"{l}attention.output.dense.bias", h);
                Add($"{l}attention.output.LayerNorm.weight", h); Add($"{l}attention.output.LayerNorm.bias", h);
                Add($"{l}intermediate.dense.weight", inter, h); Add($"{l}intermediate.dense.bias", inter);
                Add($"{l}output.dense.weight", h, inter); Add($"{l}output.dense.bias", h);
                Add($"{l}output.LayerNorm.weight", h); Add($"{l}output.LayerNorm.bias", h);
            }
        }
        switch (task, arch)
        {
            case (EncoderTask.QuestionAnswering, _):
                expected["qa_outputs.weight"] = [2, h]; expected["qa_outputs.bias"] = [2]; break;
            case (EncoderTask.TokenClassification, _):
                expected["classifier.weight"] = [labels, h]; expected["classifier.bias"] = [labels]; break;
            case (_, "bert"):
                expected["bert.pooler.dense.weight"] = [h, h]; expected["bert.pooler.dense.bias"] = [h];
                expected["classifier.weight"] = [labels, h]; expected["classifier.bias"] = [labels]; break;
            case (_, "roberta"):
                expected["classifier.dense.weight"] = [h, h]; expected["classifier.dense.bias"] = [h];
                expected["classifier.out_proj.weight"] = [labels, h]; expected["classifier.out_proj.bias"] = [labels]; break;
            default:
                expected["pre_classifier.weight"] = [h, h]; expected["pre_classifier.bias"] = [h];
                expected["classifier.weight"] = [labels, h]; expected["classifier.bias"] = [labels]; break;
        }
        Assert.Equal(expected.Keys.Order(), shapes.Keys.Order());
        foreach (var (k, s) in expected) Assert.True(s.SequenceEqual(shapes[k]), $"{k}: [{string.Join(", ", shapes[k])}]");
        Assert.Equal(c.ArchitectureName, c.ToJson()["architectures"]![0]!.GetValue<string>());
    }

    /// <summary>
    /// A BERT sequence classifier (what `rlft init-model --arch bert` and a fine-tuned HF classifier hold: pooler and
    /// classifier) is a start for a classify stage: its pooler is part of the head, not an unexpected tensor.
    /// </summary>
    [Fact]
    public void A_bert_classifier_with_its_pooler_starts_a_stage_with_the_same_or_a_new_head()
    {
        string dir = TinyEncoders.Directory("bert");
        Assert.Contains(EncoderCheckpoint.Load(dir).state_dict().Keys, k => k.Contains(".pooler.", StringComparison.Ordinal));
        Assert.Empty(ModelDirectory.CheckEncoder(dir, out _, exactHead: false));
        using var model = EncoderCheckpoint.LoadForTask(dir, EncoderTask.SequenceClassification, ["a", "b", "c", "d", "e"], null, seed: 3, out bool newHead);
        Assert.True(newHead);
        Assert.Equal(5, model.Config.NumLabels);
    }

    [Theory]
    [InlineData("bert")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    public void Save_then_load_is_bit_exact(string arch)
    {
        string dir = TinyEncoders.Directory(arch);
        using var model = EncoderCheckpoint.Load(dir);
        string copy = TinyEncoders.TempDir();
        EncoderCheckpoint.Save(model, copy, dir);
        using var loaded = EncoderCheckpoint.Load(copy);
        var a = model.state_dict(); var b = loaded.state_dict();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, t) in a) Assert.True(t.Equals(b[k]), k);
        Assert.Equal(model.Config.Labels, loaded.Config.Labels);
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "tokenizer.json")), File.ReadAllText(Path.Combine(copy, "tokenizer.json")));
    }

    static string Rewrite(string dir, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> edit)
    {
        var path = Path.Combine(dir, Checkpoint.WeightsFile);
        var tensors = SafetensorsFile.Load(path);
        SafetensorsFile.Save(path, edit(tensors));
        return dir;
    }

    [Fact]
    public void A_missing_or_extra_tensor_is_refused_with_its_name_and_found_without_loading()
    {
        string missing = Rewrite(TinyEncoders.Directory("bert"), t => { t.Remove("bert.encoder.layer.1.output.dense.weight"); return t; });
        var e = Assert.Throws<InvalidDataException>(() => EncoderCheckpoint.Load(missing));
        Assert.Contains("missing tensors: bert.encoder.layer.1.output.dense.weight", e.Message);
        Assert.Contains(ModelDirectory.CheckEncoder(missing, out _, exactHead: true), p => p.Contains("bert.encoder.layer.1.output.dense.weight"));

        string extra = Rewrite(TinyEncoders.Directory("distilbert"), t => { t["distilbert.transformer.layer.7.ffn.lin1.weight"] = zeros(2, 2); return t; });
        e = Assert.Throws<InvalidDataException>(() => EncoderCheckpoint.Load(extra));
        Assert.Contains("unexpected tensors: distilbert.transformer.layer.7.ffn.lin1.weight", e.Message);

        // The head is part of the checkpoint a model is run as; a fine-tuning start may lack it.
        string headless = Rewrite(TinyEncoders.Directory("roberta"), t => { t.Remove("classifier.out_proj.weight"); return t; });
        Assert.Contains("classifier.out_proj.weight", Assert.Throws<InvalidDataException>(() => EncoderCheckpoint.Load(headless)).Message);
        Assert.Empty(ModelDirectory.CheckEncoder(headless, out _, exactHead: false));
        using var fresh = EncoderCheckpoint.LoadForTask(headless, EncoderTask.SequenceClassification, ["a", "b"], null, seed: 3, out bool newHead);
        Assert.True(newHead);
    }

    [Theory]
    [InlineData("bert")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    public void Keys_without_the_base_model_prefix_with_gamma_beta_names_and_old_id_buffers_load(string arch)
    {
        string dir = TinyEncoders.Directory(arch, EncoderTask.QuestionAnswering);
        using var model = EncoderCheckpoint.Load(dir);
        Rewrite(dir, t =>
        {
            // TF-era names as in bert-base-uncased: LayerNorm.gamma / LayerNorm.beta.
            static string Legacy(string key) => key.EndsWith("LayerNorm.weight") ? key[..^"weight".Length] + "gamma" : key.EndsWith("LayerNorm.bias") ? key[..^"bias".Length] + "beta" : key;
            var renamed = t.ToDictionary(kv => Legacy(kv.Key.StartsWith(arch + ".") ? kv.Key[(arch.Length + 1)..] : kv.Key), kv => kv.Value);
            renamed["embeddings.position_ids"] = arange(128).unsqueeze(0);
            return renamed;
        });
        Assert.Contains("embeddings.LayerNorm.gamma", SafetensorsFile.Load(Path.Combine(dir, Checkpoint.WeightsFile)).Keys);
        Assert.Empty(ModelDirectory.CheckEncoder(dir, out _, exactHead: true));
        using var loaded = EncoderCheckpoint.Load(dir);
        foreach (var (k, t) in model.state_dict()) Assert.True(t.Equals(loaded.state_dict()[k]), k);
    }

    [Theory]
    [InlineData("bert", nameof(EncoderTask.SequenceClassification))]
    [InlineData("bert", nameof(EncoderTask.QuestionAnswering))]
    [InlineData("bert", nameof(EncoderTask.TokenClassification))]
    [InlineData("roberta", nameof(EncoderTask.SequenceClassification))]
    [InlineData("roberta", nameof(EncoderTask.QuestionAnswering))]
    [InlineData("roberta", nameof(EncoderTask.TokenClassification))]
    [InlineData("distilbert", nameof(EncoderTask.SequenceClassification))]
    [InlineData("distilbert", nameof(EncoderTask.QuestionAnswering))]
    [InlineData("distilbert", nameof(EncoderTask.TokenClassification))]
    public void Logits_match_an_independent_float64_forward_of_transformers(string arch, string taskName)
    {
        var task = Enum.Parse<EncoderTask>(taskName);
        string dir = TinyEncoders.Directory(arch, task);
        using var tm = EncoderTextModel.Load(dir);
        var cfg = TinyEncoders.Config(dir);
        var weights = TinyEncoders.Tensors(dir);
        var inputs = new[] { tm.Encode("the movie was great and fun."), tm.Encode("where does anna live?", "anna lives in paris. bob lives in rome."), tm.Encode("sad") };
        using var _ = no_grad();
        using var output = tm.Forward(inputs);
        for (int b = 0; b < inputs.Length; b++)
        {
            var reference = EncoderReference.Logits(cfg, weights, inputs[b].Ids.Select(i => (long)i).ToArray(), inputs[b].TypeIds.Select(i => (long)i).ToArray());
            var mine = task == EncoderTask.SequenceClassification ? output.Logits[b] : output.Logits[b].narrow(0, 0, inputs[b].Length);
            double diff = (mine.to(ScalarType.Float64) - reference).abs().max().item<double>();
            Assert.True(diff < 1e-5, $"{arch} {task} input {b}: max |Δ| = {diff:E2}");
            Assert.True(reference.abs().max().item<double>() > 1e-2, "logits too small to compare");
        }
    }

    [Theory]
    [InlineData("bert")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    public void Padding_does_not_change_the_logits_of_the_unpadded_sequence(string arch)
    {
        string dir = TinyEncoders.Directory(arch, EncoderTask.TokenClassification);
        using var tm = EncoderTextModel.Load(dir);
        var inputs = new[] { tm.Encode("sad"), tm.Encode("the movie was great and fun, the book was dull."), tm.Encode("anna", "lives in rome") };
        using var _ = no_grad();
        using var batched = tm.Forward(inputs);
        for (int b = 0; b < inputs.Length; b++)
        {
            using var alone = tm.Forward([inputs[b]]);
            var diff = (batched.Logits[b].narrow(0, 0, inputs[b].Length) - alone.Logits[0]).abs().max().item<float>();
            Assert.True(diff < 1e-5, $"{arch} input {b}: {diff}");
        }
    }

    [Fact]
    public void Token_types_change_BERT_and_are_ignored_by_DistilBERT()
    {
        foreach (var arch in new[] { "bert", "distilbert" })
        {
            string dir = TinyEncoders.Directory(arch);
            using var model = EncoderCheckpoint.Load(dir);
            var ids = tensor(new long[] { 2, 10, 11, 12, 3, 13, 14, 3 }).unsqueeze(0);
            var zeroTypes = zeros_like(ids);
            var pairTypes = tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1 }).unsqueeze(0);
            using var _ = no_grad();
            using var a = model.Forward(ids, null, zeroTypes);
            using var b = model.Forward(ids, null, pairTypes);
            float diff = (a.Logits - b.Logits).abs().max().item<float>();
            if (arch == "bert") Assert.True(diff > 1e-4, $"bert: token types made no difference ({diff})");
            else Assert.Equal(0f, diff);
        }
    }
}
