using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Memory;

namespace Rlft.Host.Commands;

/// <summary>
/// What `rlft run` prints of the library's memory check (<see cref="JobMemoryCheck"/>) before it starts: the estimate per
/// role, and a refusal of a job whose estimate exceeds the memory available here (exit 2, naming both figures) unless
/// told <c>--force</c>. On a GPU the models live in device memory, which is not checked.
/// </summary>
internal static class MemoryCheck
{
    public static MemoryEstimate Check(JobSpec spec, string jobName, bool force, TextWriter output)
    {
        MemoryCheckResult result;
        try { result = JobMemoryCheck.Check(spec, allowOverMemory: force); }
        catch (ConfigException e) { throw new CliException($"run: {e.Message}"); }
        catch (JobMemoryException e)
        {
            foreach (var line in e.Estimate.Summary()) output.WriteLine($"rlft: {line}");
            throw new CliException($"run: {e.Figures}; `rlft estimate {jobName}` shows where it goes (LoRA, quantize, gradient-checkpointing or a smaller batch lower it); --force runs it anyway");
        }
        foreach (var line in result.Estimate.Summary()) output.WriteLine($"rlft: {line}");
        if (result.Verdict == MemoryVerdict.NotChecked) output.WriteLine("rlft: the estimate is not checked against GPU memory");
        if (result.Verdict == MemoryVerdict.OverMemoryAllowed) output.WriteLine($"rlft: --force: running although {result.Figures}");
        return result.Estimate;
    }

    /// <summary>The process's peak resident memory next to the estimate, after the job.</summary>
    public static void PrintPeak(TextWriter output, MemoryEstimate estimate)
    {
        if (AvailableMemory.PeakResident() is long peak)
            output.WriteLine($"rlft: peak resident memory {MemoryEstimate.Human(peak)} ({peak} bytes); estimate {MemoryEstimate.Human(estimate.Total)} ({estimate.Total} bytes)");
    }
}
