using Rlft.Actors.Jobs;
using Rlft.Policy.Memory;

namespace Rlft.Host.Commands;

/// <summary>
/// What `rlft run` does with the memory estimate before it starts: print it per role, and refuse a job whose
/// estimate exceeds the memory available here (exit 2, naming both figures) unless told <c>--force</c>. On a GPU the
/// models live in device memory, which is not checked.
/// </summary>
internal static class MemoryCheck
{
    public static MemoryEstimate Check(JobSpec spec, string jobName, bool force, TextWriter output)
    {
        MemoryEstimate estimate;
        try { estimate = JobMemory.Estimate(spec); }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
        {
            throw new CliException($"run: the memory estimate needs the model's config.json: {e.Message}");
        }
        foreach (var line in estimate.Summary()) output.WriteLine($"rlft: {line}");
        if (JobMemory.OnCuda(spec.Device))
        {
            output.WriteLine("rlft: the estimate is not checked against GPU memory");
            return estimate;
        }
        var (available, source) = AvailableMemory.Read();
        if (estimate.Total <= available) return estimate;
        string figures = $"the job needs about {MemoryEstimate.Human(estimate.Total)} by estimate (largest stage {estimate.Stage}), "
            + $"and {MemoryEstimate.Human(available)} is available here ({source})";
        if (force)
        {
            output.WriteLine($"rlft: --force: running although {figures}");
            return estimate;
        }
        throw new CliException($"run: {figures}; `rlft estimate {jobName}` shows where it goes (LoRA, quantize, gradient-checkpointing or a smaller batch lower it); --force runs it anyway");
    }

    /// <summary>The process's peak resident memory next to the estimate, after the job.</summary>
    public static void PrintPeak(TextWriter output, MemoryEstimate estimate)
    {
        if (AvailableMemory.PeakResident() is long peak)
            output.WriteLine($"rlft: peak resident memory {MemoryEstimate.Human(peak)} ({peak} bytes); estimate {MemoryEstimate.Human(estimate.Total)} ({estimate.Total} bytes)");
    }
}
