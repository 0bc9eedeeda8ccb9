using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;

namespace Rlft.Tests.Cluster;

/// <summary>The plain in-process loop (the baseline the actor runtime is measured against) runs what the actors run.</summary>
public class PlainLoopTests
{
    [Fact]
    public void A_lora_job_runs_as_a_plain_loop_with_the_replica_on_the_adapters_base()
    {
        // The replica's first weights after SFT are adapter-only: it needs the base they apply on first.
        var job = JobHarness.Job(string.Join("\n", JobHarness.Sft, JobHarness.Ppo(3)), extra: "lora { rank = 4 }");
        var result = PlainLoop.Run(job, new TorchEngineFactory());
        Assert.True(result.OnlineSamples > 0);
        Assert.True(result.Summary.ContainsKey("1-ppo/after/eval/reward"));
        Assert.True(Directory.Exists(Path.Combine(job.RunDirectory, "checkpoints")) || File.Exists(Path.Combine(job.RunDirectory, RunRecorder.SummaryFile)));
    }
}
