using Rlft.Policy.Encoders;
using Rlft.Policy.Training;
using Rlft.Reward;
using Rlft.Reward.Sources;
using static TorchSharp.torch;

namespace Rlft.Tests.Encoders;

public class EncoderRewardTests
{
    [Fact]
    public void The_loss_is_Bradley_Terry_on_the_single_logit()
    {
        string dir = TinyEncoders.Directory("bert", labels: 1);
        using var model = EncoderTextModel.Load(dir);
        using var t = new EncoderRewardTrainer(model, new RewardModelOptions(), new OptimizerOptions { TotalSteps = 1 }, withPrompt: true);
        (string, string, string)[] pair = [("review the movie:", "it was great.", "it was bad.")];
        float chosen, rejected;
        using (no_grad())
        {
            chosen = t.Scores([("review the movie:", "it was great.")]).item<float>();
            rejected = t.Scores([("review the movie:", "it was bad.")]).item<float>();
        }
        var stats = t.Step(pair);                                                  // the loss of the weights before the update
        Assert.Equal(Math.Log(1 + Math.Exp(-(chosen - rejected))), stats["loss/reward_model"], 5);
        Assert.Equal(chosen - rejected, stats["rm/margin"], 5);
        Assert.Throws<ArgumentException>(() => new EncoderRewardTrainer(EncoderTextModel.Load(TinyEncoders.Directory("bert", labels: 2)), new RewardModelOptions(), new OptimizerOptions(), true));
    }

    /// <summary>
    /// A tiny BERT reward model learns that positive reviews are preferred to negative ones (pairs of the built-in
    /// sentiment data) to 0.9 held-out accuracy, and the directory it is saved to scores through the classifier reward
    /// source (score = logit of its one output), positive reviews above negative ones.
    /// </summary>
    [Fact]
    public async Task An_encoder_reward_model_learns_preferences_and_rewards_through_the_classifier_source()
    {
        string dir = TinyEncoders.TempDir();
        using var model = EncoderPresets.InitModel("bert", "tiny", dir, seed: 2, corpus: SentimentData.Corpus(), vocabSize: 200, labels: ["LABEL_0"]);
        static List<(string, string, string)> Pairs(int n, int seed)
        {
            var data = SentimentData.Generate(4 * n, seed);
            var pos = data.Where(x => x.Label == "POSITIVE").Select(x => x.Text).ToList();
            var neg = data.Where(x => x.Label == "NEGATIVE").Select(x => x.Text).ToList();
            return Enumerable.Range(0, n).Select(i => ("write a review:", pos[i], neg[i])).ToList();
        }
        var train = Pairs(512, seed: 1);
        var heldOut = Pairs(64, seed: 2);
        using var text = new EncoderTextModel(model, Rlft.Policy.Tokenization.EncoderTokenizer.Load(dir), maxLength: 32);
        using (var t = new EncoderRewardTrainer(text, new RewardModelOptions(), new OptimizerOptions { LearningRate = 1e-3, WarmupSteps = 5, TotalSteps = 48 }, withPrompt: true))
        {
            for (int step = 0; step < 48; step++) t.Step(train.Skip(step * 16 % train.Count).Take(16).ToList());
            var after = t.Evaluate(heldOut);
            Assert.True(after["eval/accuracy"] >= 0.9, $"held-out accuracy {after["eval/accuracy"]:F3}, margin {after["eval/margin"]:F3}");
        }
        EncoderCheckpoint.Save(model, dir);
        using var source = new ClassifierRewardSource("rm", new ClassifierSpec(dir, "LABEL_0", WithPrompt: true));
        var samples = heldOut.Take(16).SelectMany(p => new[] { new RewardSample(p.Item1, p.Item2), new RewardSample(p.Item1, p.Item3) }).ToList();
        var scores = (await source.ScoreAsync(samples, TestContext.Current.CancellationToken)).Scores.Select(s => s.Value!.Value).ToList();
        Assert.True(Enumerable.Range(0, 16).Count(i => scores[2 * i] > scores[2 * i + 1]) >= 14, "the source does not score positive reviews above negative ones");
    }
}
