using Rlft.Actors.Configuration;
using Rlft.Policy.Memory;

namespace Rlft.Actors.Jobs;

/// <summary>How a job's memory estimate compares with the memory available here.</summary>
public enum MemoryVerdict
{
    /// <summary>The estimate fits in the memory available.</summary>
    Fits,
    /// <summary>The job runs on a GPU: the models live in device memory, which is not checked.</summary>
    NotChecked,
    /// <summary>The estimate exceeds the memory available, and the job was allowed to run anyway.</summary>
    OverMemoryAllowed,
}

/// <summary>The outcome of <see cref="JobMemoryCheck.Check"/> for a job allowed to start.</summary>
/// <param name="Available">The bytes available here (null when not checked: a GPU job).</param>
/// <param name="Source">Where <paramref name="Available"/> comes from ("MemAvailable", "cgroup memory limit", "RLFT_MEMORY_LIMIT").</param>
public sealed record MemoryCheckResult(MemoryEstimate Estimate, MemoryVerdict Verdict, long? Available, string? Source)
{
    /// <summary>"the job needs about … by estimate (largest stage …), and … is available here (…)"; empty when not checked.</summary>
    public string Figures => Available is long bytes ? JobMemoryCheck.Figures(Estimate, bytes, Source!) : "";
}

/// <summary>
/// Thrown by <see cref="JobMemoryCheck.Check"/> for a job whose estimate exceeds the memory available here, before
/// anything of the job is written or loaded. The message is one line naming both figures.
/// </summary>
public sealed class JobMemoryException(string message, MemoryEstimate estimate, long available, string availableSource) : Exception(message)
{
    public MemoryEstimate Estimate { get; } = estimate;
    /// <summary>The bytes available here.</summary>
    public long Available { get; } = available;
    /// <summary>Where <see cref="Available"/> comes from ("MemAvailable", "cgroup memory limit", "RLFT_MEMORY_LIMIT").</summary>
    public string AvailableSource { get; } = availableSource;
    /// <summary>Both figures, as in the message: "the job needs about … by estimate (…), and … is available here (…)".</summary>
    public string Figures => JobMemoryCheck.Figures(Estimate, Available, AvailableSource);
}

/// <summary>
/// The check before a job starts (<c>rlft run</c> and <c>IRlftJobRunner</c>): the job's memory estimate
/// (<see cref="JobMemory"/>) against the memory available here (<see cref="AvailableMemory"/>). A job that cannot fit
/// is refused unless allowed over memory; on a GPU the models live in device memory, which is not checked.
/// </summary>
public static class JobMemoryCheck
{
    /// <summary>
    /// The estimate and the verdict, or <see cref="JobMemoryException"/> when the estimate exceeds the memory available
    /// and <paramref name="allowOverMemory"/> is false. <paramref name="available"/> reads the memory available
    /// (default <see cref="AvailableMemory.Read"/>). A model whose config.json cannot be read is a <see cref="ConfigException"/>.
    /// </summary>
    public static MemoryCheckResult Check(JobSpec spec, bool allowOverMemory, Func<(long Bytes, string Source)>? available = null)
    {
        MemoryEstimate estimate;
        try { estimate = JobMemory.Estimate(spec); }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
        {
            throw new ConfigException($"the memory estimate needs the model's config.json: {e.Message}");
        }
        if (JobMemory.OnCuda(spec.Device)) return new(estimate, MemoryVerdict.NotChecked, null, null);
        var (bytes, source) = (available ?? AvailableMemory.Read)();
        if (estimate.Total <= bytes) return new(estimate, MemoryVerdict.Fits, bytes, source);
        if (allowOverMemory) return new(estimate, MemoryVerdict.OverMemoryAllowed, bytes, source);
        throw new JobMemoryException($"job '{spec.Name}': {Figures(estimate, bytes, source)}; LoRA, quantize, gradient-checkpointing "
            + "or a smaller batch lower the estimate, and allowing over memory runs it anyway", estimate, bytes, source);
    }

    internal static string Figures(MemoryEstimate estimate, long available, string source) =>
        $"the job needs about {MemoryEstimate.Human(estimate.Total)} by estimate (largest stage {estimate.Stage}), "
        + $"and {MemoryEstimate.Human(available)} is available here ({source})";
}
