using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Actors;

public class RolloutBatchingTests
{
    [Fact]
    public void The_rollout_engine_samples_the_same_completions_with_continuous_batching_as_with_one_static_batch()
    {
        var job = JobHarness.Job(JobHarness.Sft);
        byte[] weights;
        using (var learner = new TorchLearnerEngine(job)) weights = learner.ExportWeights(WeightKind.Policy);
        var prompts = new[] { "review the book:", "review the tea:", "rate it:", "review the long film about the sea:", "ok:", "review:", "the book" }
            .Select(p => new PromptItem(p, null, 0)).ToArray();
        var sampling = new SamplingSettings(10, 1.0, 0, 1.0);
        RolloutSample[] Run(JobSpec j)
        {
            using var engine = new TorchRolloutEngine(j);
            engine.ApplyWeights(1, weights);
            return engine.Generate(prompts, sampling, seed: 3);
        }
        Assert.Equal(16, job.RolloutSlots);
        var continuous = Run(job with { RolloutSlots = 2 });
        var single = Run(job with { RolloutSlots = 0 });
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(single[i].CompletionTokens, continuous[i].CompletionTokens);
            Assert.Equal(single[i].Completion, continuous[i].Completion);
            for (int j = 0; j < single[i].CompletionTokens.Length; j++) Assert.Equal(single[i].Logprobs[j], continuous[i].Logprobs[j], 1e-5f);
        }
    }
}
