using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Encoders;
using Rlft.Reward;
using Rlft.Reward.Sources;
using Rlft.Tests.Encoders;

namespace Rlft.Tests.Reward;

/// <summary>An encoder classifier as a reward source: the label's logit, probability or margin, checked against the model's own logits.</summary>
public class ClassifierRewardTests
{
    static readonly string[] Completions = ["a great and lovely lamp", "a dull and broken kettle", "fine", ""];

    static List<RewardSample> Samples(params string[] completions) =>
        completions.Select(c => new RewardSample("review the lamp:", c)).ToList();

    [Theory]
    [InlineData("bert")]
    [InlineData("distilbert")]
    public async Task Scores_are_the_labels_logit_probability_and_margin(string arch)
    {
        string dir = TinyEncoders.Directory(arch, labels: 3);
        float[][] logits;
        using (var model = EncoderTextModel.Load(dir)) logits = model.Logits(Completions.Select(c => (c, (string?)null)).ToList());

        async Task<double[]> Score(ClassifierScore score, string label)
        {
            using var source = new ClassifierRewardSource("sentiment", new ClassifierSpec(dir, label, score, MaxBatch: 3));
            var scores = await source.ScoreAsync(Samples(Completions), CancellationToken.None);
            return scores.Scores.Select(s => s.Value!.Value).ToArray();
        }
        var logit = await Score(ClassifierScore.Logit, "L1");
        var byIndex = await Score(ClassifierScore.Logit, "1");
        var probability = await Score(ClassifierScore.Probability, "L1");
        var margin = await Score(ClassifierScore.Margin, "L2");
        for (int i = 0; i < Completions.Length; i++)
        {
            var l = logits[i];
            Assert.Equal(l[1], logit[i], 5);
            Assert.Equal(logit[i], byIndex[i]);
            double z = l.Sum(v => Math.Exp(v));
            Assert.Equal(Math.Exp(l[1]) / z, probability[i], 5);
            Assert.Equal(l[2] - Math.Max(l[0], l[1]), margin[i], 5);
        }
        // The completions really differ to the classifier (a constant scorer would pass the equalities above).
        Assert.True(logit.Distinct().Count() > 1);
    }

    [Fact]
    public async Task With_the_prompt_the_completion_is_the_text_pair()
    {
        string dir = TinyEncoders.Directory("bert", labels: 2);
        float[][] expected;
        using (var model = EncoderTextModel.Load(dir)) expected = model.Logits([("review the lamp:", "a great and lovely lamp")]);
        using var source = new ClassifierRewardSource("s", new ClassifierSpec(dir, "L0", WithPrompt: true));
        var scores = await source.ScoreAsync(Samples("a great and lovely lamp"), CancellationToken.None);
        Assert.Equal(expected[0][0], scores.Scores[0].Value!.Value, 5);
    }

    [Fact]
    public void A_reward_spec_reads_the_classifier_source_and_refuses_an_unknown_label()
    {
        string dir = TinyEncoders.Directory("roberta", labels: 2);
        var config = RlftConfig.ParseText($"rewards {{ components = [ {{ name = sentiment, source = classifier, model = \"{dir}\", label = L1, score = probability, text = prompt-and-completion }} ] }}");
        var spec = (ClassifierSpec)RewardSpecReader.Read(config).Components[0].Source;
        Assert.Equal(new ClassifierSpec(dir, "L1", ClassifierScore.Probability, WithPrompt: true), spec);
        Assert.Empty(spec.Check());
        var problem = Assert.Single(new ClassifierSpec(dir, "POSITIVE").Check());
        Assert.StartsWith("label: 'POSITIVE' is not a label of", problem);
        Assert.Contains("L0, L1", problem);
        string qa = TinyEncoders.Directory("bert", EncoderTask.QuestionAnswering);
        Assert.StartsWith("model: ", Assert.Single(new ClassifierSpec(qa, "L0").Check()));
    }
}
