using System.Text.Json.Nodes;
using Rlft.Policy.Encoders;
using static TorchSharp.torch;

namespace Rlft.Tests.Encoders;

/// <summary>
/// Each head against a hand computation on a 4-wide hidden state: the body's last hidden states are taken from the
/// model's own output, the head's weights are small hand-set numbers, and the logits are worked out with scalar
/// arithmetic from transformers' head definitions.
/// </summary>
public class EncoderHeadTests
{
    const int H = 4;
    static readonly double[,] Dense = { { 1, -2, 0.5, 0 }, { 0.5, 1, -1, 2 }, { -1, 0, 0, 1.5 }, { 2, 1, 1, -1 } };
    static readonly double[] DenseBias = [0.1, -0.2, 0.3, -3];
    static readonly double[,] Out = { { 1, 1, 0, -1 }, { 2, -1, 0.5, 0 }, { 0, 3, -2, 1 } };
    static readonly double[] OutBias = [0, 0.5, -1];

    static EncoderModel Model(string arch, EncoderTask task)
    {
        var o = arch == "distilbert"
            ? new JsonObject { ["model_type"] = arch, ["vocab_size"] = 10, ["dim"] = H, ["n_layers"] = 1, ["n_heads"] = 2, ["hidden_dim"] = 8, ["max_position_embeddings"] = 16 }
            : new JsonObject { ["model_type"] = arch, ["vocab_size"] = 10, ["hidden_size"] = H, ["num_hidden_layers"] = 1, ["num_attention_heads"] = 2, ["intermediate_size"] = 8, ["max_position_embeddings"] = 16 };
        var config = EncoderConfig.Parse(o).WithHead(task, task == EncoderTask.QuestionAnswering ? ["start", "end"] : ["a", "b", "c"], null);
        var model = new EncoderModel(config);
        model.InitWeights(seed: 5, std: 0.5);
        model.eval();
        return model;
    }

    static void Set(EncoderModel model, string name, double[,] w, int rows)
    {
        var flat = new float[rows * H];
        for (int i = 0; i < rows; i++) for (int j = 0; j < H; j++) flat[i * H + j] = (float)w[i, j];
        using var _ = no_grad();
        model.state_dict()[name].copy_(tensor(flat, [rows, H]));
    }

    static void Set(EncoderModel model, string name, double[] b)
    {
        using var _ = no_grad();
        model.state_dict()[name].copy_(tensor(b.Select(x => (float)x).ToArray()));
    }

    static double[] Affine(double[,] w, double[] b, double[] x) =>
        Enumerable.Range(0, b.Length).Select(i => b[i] + Enumerable.Range(0, H).Sum(j => w[i, j] * x[j])).ToArray();

    static (double[] First, float[] Logits) Run(EncoderModel model)
    {
        using var _ = no_grad();
        var ids = tensor(new long[] { 2, 5, 7, 3 }).unsqueeze(0);
        using var output = model.Forward(ids);
        var first = output.HiddenStates[0, 0].to(ScalarType.Float64).data<double>().ToArray();
        return (first, output.Logits.flatten().data<float>().ToArray());
    }

    [Theory]
    [InlineData("bert", "bert.pooler.dense", "classifier")]
    [InlineData("roberta", "classifier.dense", "classifier.out_proj")]
    public void BERT_and_RoBERTa_classify_with_tanh_dense_on_the_first_token(string arch, string dense, string output)
    {
        using var model = Model(arch, EncoderTask.SequenceClassification);
        Set(model, dense + ".weight", Dense, H); Set(model, dense + ".bias", DenseBias);
        Set(model, output + ".weight", Out, 3); Set(model, output + ".bias", OutBias);
        var (x, logits) = Run(model);
        var expected = Affine(Out, OutBias, Affine(Dense, DenseBias, x).Select(Math.Tanh).ToArray());
        for (int i = 0; i < 3; i++) Assert.Equal(expected[i], logits[i], 5);
    }

    [Fact]
    public void DistilBERT_classifies_with_ReLU_after_pre_classifier()
    {
        using var model = Model("distilbert", EncoderTask.SequenceClassification);
        Set(model, "pre_classifier.weight", Dense, H); Set(model, "pre_classifier.bias", DenseBias);
        Set(model, "classifier.weight", Out, 3); Set(model, "classifier.bias", OutBias);
        var (x, logits) = Run(model);
        var pre = Affine(Dense, DenseBias, x);
        Assert.Contains(pre, v => v < 0);   // the ReLU has something to cut (bias −3 on the last unit)
        var expected = Affine(Out, OutBias, pre.Select(v => Math.Max(0, v)).ToArray());
        for (int i = 0; i < 3; i++) Assert.Equal(expected[i], logits[i], 5);
        var tanh = Affine(Out, OutBias, pre.Select(Math.Tanh).ToArray());
        Assert.True(Enumerable.Range(0, 3).Any(i => Math.Abs(tanh[i] - logits[i]) > 1e-2), "ReLU and tanh heads agree: the test cannot tell them apart");
    }

    [Theory]
    [InlineData("bert")]
    [InlineData("distilbert")]
    public void QA_outputs_give_start_and_end_logits_at_every_token(string arch)
    {
        using var model = Model(arch, EncoderTask.QuestionAnswering);
        double[,] w = { { 1, -1, 2, 0.5 }, { 0, 1, -1, 3 } };
        double[] b = [0.25, -0.5];
        Set(model, "qa_outputs.weight", w, 2); Set(model, "qa_outputs.bias", b);
        using var _ = no_grad();
        var ids = tensor(new long[] { 2, 5, 7, 3 }).unsqueeze(0);
        using var output = model.Forward(ids);
        Assert.Equal([1L, 4, 2], output.Logits.shape);
        var hidden = output.HiddenStates[0].to(ScalarType.Float64);
        for (int t = 0; t < 4; t++)
        {
            var x = hidden[t].data<double>().ToArray();
            var expected = Enumerable.Range(0, 2).Select(i => b[i] + Enumerable.Range(0, H).Sum(j => w[i, j] * x[j])).ToArray();
            Assert.Equal(expected[0], output.Logits[0, t, 0].item<float>(), 5);   // start
            Assert.Equal(expected[1], output.Logits[0, t, 1].item<float>(), 5);   // end
        }
    }
}
