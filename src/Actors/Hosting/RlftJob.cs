using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;

namespace Rlft.Hosting;

/// <summary>
/// A checked job, ready for <see cref="IRlftJobRunner"/>: built in code (<see cref="Create"/>), read from HOCON
/// (<see cref="FromHocon"/>, <see cref="FromFile"/>), or a run to continue (<see cref="Resume"/>).
/// </summary>
public sealed class RlftJob
{
    internal RlftJob(JobSpec spec, JobRecord record, ResumePoint? resumeFrom) => (Spec, Record, ResumeFrom) = (spec, record, resumeFrom);

    /// <summary>The validated job, as <c>rlft run</c> would run it.</summary>
    public JobSpec Spec { get; }
    public string Name => Spec.Name;
    /// <summary>Where the run writes metrics.jsonl, summary.json, samples and checkpoints.</summary>
    public string RunDirectory => Path.GetFullPath(Spec.RunDirectory);
    /// <summary>The job's HOCON, as recorded in the run directory's run.json.</summary>
    public string Hocon => Record.JobText;

    internal JobRecord Record { get; }
    internal ResumePoint? ResumeFrom { get; }

    /// <summary>A job built in code, named <paramref name="name"/> (relative paths resolve against the current folder).</summary>
    public static RlftJobBuilder Create(string name) => new(name, null, Path.Combine(Environment.CurrentDirectory, name + ".conf"));

    /// <summary>
    /// A job file's text (<c>rlft.job { … }</c>); <paramref name="path"/> is where it counts as being, for its includes and
    /// relative paths (default: the current folder). <paramref name="overrides"/> are <c>key=value</c> as with <c>--set</c>.
    /// </summary>
    public static RlftJobBuilder FromHocon(string text, string? path = null, params string[] overrides) =>
        new(null, text, path ?? Path.Combine(Environment.CurrentDirectory, "job.conf"), overrides: overrides);

    /// <summary>A job file (or a preset's name, as <c>rlft run</c> takes it).</summary>
    public static RlftJobBuilder FromFile(string path, params string[] overrides)
    {
        string resolved = RlftConfig.ResolvePath(path);
        if (!File.Exists(resolved)) throw new ConfigException($"config file not found: {path}");
        return new(null, File.ReadAllText(resolved), resolved, overrides: overrides);
    }

    /// <summary>
    /// Continues the run in <paramref name="runDirectory"/> from its newest checkpoint (the one a cancelled run wrote),
    /// as <c>rlft run --resume</c> does; register the job's reward functions again on the builder.
    /// </summary>
    public static RlftJobBuilder Resume(string runDirectory)
    {
        if (!Directory.Exists(runDirectory)) throw new ConfigException($"resume {runDirectory}: no such run directory");
        return new(null, null, Path.Combine(runDirectory, JobRecord.FileName), resumeRunDirectory: runDirectory);
    }
}
