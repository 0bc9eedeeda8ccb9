using Rlft.Policy.Encoders;
using static TorchSharp.torch;

namespace Rlft.Tests.Encoders;

/// <summary>The QA loss and the built-in QA data; that a model learns it is hocon/qa.conf's test (PresetTests).</summary>
public class QaTrainerTests
{
    [Fact]
    public void Loss_is_the_mean_of_the_start_and_end_cross_entropies()
    {
        // One window of three positions: start logits [1, 2, 0], end logits [0, -1, 3]; gold start 1, end 2.
        float[] logits = [1, 0, 2, -1, 0, 3];                                          // (1, 3, 2)
        using var loss = QaTrainer.Loss(tensor(logits, [1, 3, 2]), tensor(new long[] { 1 }), tensor(new long[] { 2 }));
        static double Nll(double[] row, int y) => Math.Log(row.Sum(Math.Exp)) - row[y];
        Assert.Equal((Nll([1, 2, 0], 1) + Nll([0, -1, 3], 2)) / 2, loss.item<float>(), 5);
    }

    [Fact]
    public void Built_in_answers_sit_at_their_offsets()
    {
        foreach (var x in QaData.Generate(200, seed: 3))
            Assert.Equal(x.Answers[0], x.Context.Substring(x.AnswerStarts[0], x.Answers[0].Length));
    }
}
