using Rlft.Policy.Encoders;
using Rlft.Policy.Training;
using static TorchSharp.torch;

namespace Rlft.Tests.Encoders;

public class ClassifierTrainerTests
{
    static readonly float[] Logits = [1.0f, -2.0f, 0.5f, 0.0f, 3.0f, -1.0f];   // (2, 3)

    [Fact]
    public void Single_label_loss_is_cross_entropy()
    {
        using var loss = ClassifierTrainer.Loss(tensor(Logits, [2, 3]), tensor(new long[] { 2, 1 }), ProblemType.SingleLabel);
        static double Nll(double[] row, int y) => Math.Log(row.Sum(Math.Exp)) - row[y];
        double expected = (Nll([1, -2, 0.5], 2) + Nll([0, 3, -1], 1)) / 2;
        Assert.Equal(expected, loss.item<float>(), 5);
    }

    [Fact]
    public void Multi_label_loss_is_binary_cross_entropy_per_label()
    {
        float[] targets = [1, 0, 1, 0, 1, 1];
        using var loss = ClassifierTrainer.Loss(tensor(Logits, [2, 3]), tensor(targets, [2, 3]), ProblemType.MultiLabel);
        double expected = Logits.Select((z, i) => targets[i] == 1 ? Math.Log(1 + Math.Exp(-z)) : Math.Log(1 + Math.Exp(z))).Average();
        Assert.Equal(expected, loss.item<float>(), 5);
    }

    [Fact]
    public void Regression_loss_is_mean_squared_error_of_the_single_logit()
    {
        using var loss = ClassifierTrainer.Loss(tensor(new[] { 0.5f, -1f, 2f }, [3, 1]), tensor(new[] { 1f, 1f, 1f }), ProblemType.Regression);
        Assert.Equal((0.25 + 4 + 1) / 3, loss.item<float>(), 5);
    }

    [Fact]
    public void A_tiny_BERT_learns_the_built_in_sentiment_data_to_90_percent_held_out()
    {
        string dir = TinyEncoders.TempDir();
        using (EncoderPresets.InitModel("bert", "tiny", dir, seed: 1, corpus: SentimentData.Corpus(), vocabSize: 200, labels: SentimentData.Labels)) { }
        using var model = EncoderTextModel.Load(dir, maxLength: 32);
        var train = SentimentData.Generate(1024, seed: 1);
        var heldOut = SentimentData.Generate(256, seed: 2);
        using var trainer = new ClassifierTrainer(model, new OptimizerOptions { LearningRate = 1e-3, WarmupSteps = 10, TotalSteps = 96 });
        var before = trainer.Evaluate(heldOut);
        double firstLoss = 0, lastLoss = 0;
        for (int step = 0; step < 96; step++)
        {
            var batch = train.Skip(step * 32 % train.Count).Take(32).ToList();
            var result = trainer.Step(batch);
            if (step == 0) firstLoss = result.Loss;
            lastLoss = result.Loss;
        }
        var after = trainer.Evaluate(heldOut);
        Assert.True(after.Accuracy >= 0.9, $"held-out accuracy {after.Accuracy:F3} (before {before.Accuracy:F3}; loss {firstLoss:F3} → {lastLoss:F3})");
        Assert.True(after.F1 >= 0.9, $"macro F1 {after.F1:F3}");
        Assert.True(lastLoss < firstLoss);
    }
}
