using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Rlft.Actors.Jobs;
using Rlft.Hosting;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Hosting;

/// <summary>
/// The memory check <c>rlft run</c> makes, through <see cref="IRlftJobRunner"/>: a code-built job whose estimate exceeds
/// the memory the check sees (a figure the test gives; nothing is allocated) is refused with both figures before its run
/// directory exists; <see cref="RlftOptions.AllowOverMemory"/> runs it.
/// </summary>
public class JobMemoryRefusalTests(ITestOutputHelper output)
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    const long Available = 1L << 20;
    const string Source = "the test's figure";

    static IHost NewHost(bool allowOverMemory, Action<IServiceCollection>? more = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Services.AddRlft(o =>
        {
            o.AkkaHocon = JobHarness.TestHocon;
            o.ReadAvailableMemory = () => (Available, Source);
            o.AllowOverMemory = allowOverMemory;
        });
        more?.Invoke(builder.Services);
        return builder.Build();
    }

    /// <summary>A tiny SFT job on a built-in dataset: nothing of it is written when it is built.</summary>
    static RlftJob TinyJob(string name, string outputDir) => RlftJob.Create(name)
        .Seed(3).Device("cpu").OutputDir(outputDir).InitModel("gpt2", "tiny").Set("eval-prompts", 4)
        .Stage(RlftStage.Sft(RlftData.Builtin("sft"), steps: 2, batchSize: 4))
        .Build();

    [Fact]
    public async Task A_job_over_the_memory_available_is_refused_with_both_figures_before_its_run_directory_exists_and_runs_when_allowed()
    {
        string root = Directory.CreateTempSubdirectory("rlft-api-memory").FullName;
        try
        {
            var job = TinyJob("over-memory", root);
            long estimate = JobMemory.Estimate(job.Spec).Total;
            Assert.True(estimate > Available, $"the tiny job's estimate {estimate} B should exceed the test's {Available} B");
            Assert.False(Directory.Exists(job.RunDirectory));

            using (var host = NewHost(allowOverMemory: false))
            {
                var runner = host.Services.GetRequiredService<IRlftJobRunner>();
                var events = new List<JobEvent>();
                var refused = await Assert.ThrowsAsync<JobMemoryException>(async () =>
                {
                    await foreach (var e in runner.RunAsync(job, Ct)) events.Add(e);
                });
                output.WriteLine(refused.Message);
                Assert.Empty(events);
                Assert.DoesNotContain('\n', refused.Message);
                Assert.Matches(@"^job 'over-memory': the job needs about \d+(\.\d+)? [KMG]iB by estimate \(largest stage 0-sft\), "
                    + @"and 1\.00 MiB is available here \(the test's figure\); .*allowing over memory runs it anyway$", refused.Message);
                Assert.Equal(estimate, refused.Estimate.Total);
                Assert.Equal(Available, refused.Available);
                // Refused before anything is written: no run directory (no run.json, no init-model weights).
                Assert.False(Directory.Exists(job.RunDirectory), "the refused job wrote its run directory");
                Assert.Empty(Directory.EnumerateFileSystemEntries(root));
            }

            using (var host = NewHost(allowOverMemory: true))
            {
                var end = await host.Services.GetRequiredService<IRlftJobRunner>().RunToEndAsync(job, cancellationToken: Ct);
                Assert.True(end.Outcome == JobOutcome.Succeeded, end.Message);
                Assert.True(File.Exists(Path.Combine(job.RunDirectory, "summary.json")));
            }
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public async Task A_hosted_job_over_the_memory_available_faults_its_completion_and_stops_the_host()
    {
        string root = Directory.CreateTempSubdirectory("rlft-api-memory").FullName;
        try
        {
            var job = TinyJob("hosted-over-memory", root);
            using var host = NewHost(allowOverMemory: false, s => s.AddRlftJob(_ => job));
            var service = host.Services.GetRequiredService<RlftJobService>();

            await host.RunAsync(Ct).WaitAsync(TimeSpan.FromMinutes(1), Ct);   // returns because the refused job stopped the host

            var refused = await Assert.ThrowsAsync<JobMemoryException>(() => service.Completion);
            Assert.Contains("1.00 MiB is available here (the test's figure)", refused.Message);
            Assert.False(Directory.Exists(job.RunDirectory));
        }
        finally { Directory.Delete(root, true); }
    }
}
