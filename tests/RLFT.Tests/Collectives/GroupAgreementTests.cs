using FsCheck.Xunit;
using Rlft.Policy.Collectives;
using Rlft.Policy.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Tests.Collectives;

/// <summary>
/// The group's weight check (<c>group-check-every</c>): members gather each other's 64-bit values exactly, compare a
/// hash of their weights every K optimizer steps, and every member stops, naming the step and who differs, once a
/// replica's weights are no longer bitwise the others'.
/// </summary>
public class GroupAgreementTests
{
    [Property(MaxTest = 40)]
    public void Every_member_gathers_every_members_value_by_rank(ulong seed, byte sizeByte)
    {
        int size = 1 + sizeByte % 5;
        ulong ValueOf(int rank) => (seed + (ulong)rank * 0x9E3779B97F4A7C15UL) * 0xBF58476D1CE4E5B9UL;
        var gathered = GroupThreads.Run(size, group => group.Gather(ValueOf(group.Rank)));
        var expected = Enumerable.Range(0, size).Select(ValueOf).ToArray();
        for (int r = 0; r < size; r++) Assert.Equal(expected, gathered[r]);
    }

    [Fact]
    public void The_hash_covers_every_byte_and_the_order_of_the_weights()
    {
        var a = tensor(new float[] { 1, 2, 3 });
        var b = tensor(new float[] { 4, 5 });
        ulong h = LearnerGroup.WeightHash([a, b]);
        Assert.Equal(h, LearnerGroup.WeightHash([a.clone(), b.clone()]));
        Assert.NotEqual(h, LearnerGroup.WeightHash([b, a]));
        Assert.NotEqual(h, LearnerGroup.WeightHash([a, tensor(new float[] { 4, BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(5f) + 1) })]));
    }

    /// <summary>
    /// Two members train the same linear layer with their own optimizers on the same gradients: with equal starting
    /// weights every check passes; with one weight a bit apart on member 1, the check after step 2 stops both members.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Members_whose_weights_differ_stop_at_the_next_check(bool perturb)
    {
        var steps = GroupThreads.Run(InProcessTransport.Create(2), transport =>
        {
            var group = new LearnerGroup(transport) { CheckEvery = 2 };
            var w = nn.Parameter(arange(6, dtype: ScalarType.Float32).reshape(2, 3) / 10);
            if (perturb && group.Rank == 1)
                using (no_grad()) w.index_put_(tensor(0.5f + 1e-6f), 0, 0);
            using var optimizer = new TrainingOptimizer([w], new OptimizerOptions { LearningRate = 1e-2, WarmupSteps = 0 }) { Group = group };
            var x = ones(4, 3);
            int done = 0;
            try
            {
                for (int s = 0; s < 4; s++)
                {
                    optimizer.Backward(x.matmul(w.t()).square().mean());
                    optimizer.Step();
                    done++;
                }
                return (done, "");
            }
            catch (LearnersDivergedException e) { return (done, e.Message); }
        });
        if (!perturb)
        {
            Assert.All(steps, s => Assert.Equal((4, ""), s));
            return;
        }
        foreach (var (done, message) in steps)
        {
            // Step 1 is not checked; step 2 applies, then its check stops both members.
            Assert.Equal(1, done);
            Assert.StartsWith("the learners' weights differ after optimizer step 2 (hash ", message);
            Assert.Contains("on learner(s) 0", message);
            Assert.Contains("on learner(s) 1", message);
            Assert.Contains("rlft.job.group-check-every", message);
        }
    }
}
