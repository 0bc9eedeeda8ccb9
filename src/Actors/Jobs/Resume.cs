using System.Text.Json;
using System.Text.Json.Serialization;
using Rlft.Actors.Configuration;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.Jobs;

/// <summary>
/// The coordinator's half of a checkpoint (<c>resume.json</c>): where the job stands and what it has
/// counted, so that <c>rlft run --resume</c> continues exactly where the checkpoint was written. The
/// learner's half (weights, optimizer, KL coefficient, RNG states) sits beside it.
/// </summary>
internal sealed record ResumeState
{
    public const string FileName = "resume.json";

    /// <summary>The stage to continue.</summary>
    public required int Stage { get; init; }
    /// <summary>True when the stage was under way (online, past its "before" evaluation); false: start it afresh.</summary>
    public required bool Started { get; init; }
    /// <summary>Steps of <see cref="Stage"/> already trained.</summary>
    public required int Step { get; init; }
    public required int GlobalStep { get; init; }
    public required long NextBatchId { get; init; }
    /// <summary>Batches of the stage handed out so far (trained or outstanding).</summary>
    public required int Issued { get; init; }
    /// <summary>Prompts of the stage's data drawn so far.</summary>
    public required int DataCursor { get; init; }
    public required long PolicyVersion { get; init; }
    public required long RewardModelVersion { get; init; }
    public required long Trained { get; init; }
    public required long StaleDropped { get; init; }
    public required long Reissued { get; init; }
    public required long Duplicates { get; init; }
    public required Dictionary<string, long> BatchesPerWorker { get; init; }
    public required Dictionary<string, double> Summary { get; init; }
    /// <summary>
    /// Batches issued but not yet trained on when the checkpoint was written (only with max-policy-lag ≥ 1,
    /// or when interrupted mid-generation): generated again on resume, with the same prompts and seeds.
    /// </summary>
    public required GenerateRollouts[] Outstanding { get; init; }
    /// <summary>Lengths of metrics.jsonl and samples.jsonl at the checkpoint: a resumed run cuts them back to these.</summary>
    public required long MetricsBytes { get; init; }
    public required long SamplesBytes { get; init; }
    /// <summary>The final checkpoint of a finished job: nothing is left to resume.</summary>
    public bool Completed { get; init; }

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The run's logs and their lengths at the checkpoint.</summary>
    internal (string File, long Length)[] Logs => [("metrics.jsonl", MetricsBytes), ("samples.jsonl", SamplesBytes)];

    /// <summary>Refuses a run directory whose logs are shorter now than when the checkpoint was written.</summary>
    internal void CheckLogs(string runDirectory, string checkpointName)
    {
        foreach (var (name, length) in Logs)
        {
            var file = new FileInfo(Path.Combine(runDirectory, name));
            long now = file.Exists ? file.Length : 0;
            if (now < length)
                throw new ConfigException($"--resume {runDirectory}: {name} is shorter than when {checkpointName} was written ({now} < {length} bytes); the run directory was changed since");
        }
    }

    public static ResumeState Read(string checkpointDirectory)
    {
        string path = Path.Combine(checkpointDirectory, FileName);
        try { return JsonSerializer.Deserialize<ResumeState>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a resume state ({e.Message})", e); }
    }
}

/// <summary>A checkpoint to continue from: its directory and the coordinator's state in it.</summary>
internal sealed record ResumePoint(string Directory, ResumeState State)
{
    /// <summary>
    /// The newest resumable checkpoint of a run directory (the one with the highest global step that has a
    /// resume.json). Checkpoints are written to a temporary folder and renamed, so a run killed while writing
    /// one leaves no half-written checkpoint here.
    /// </summary>
    public static ResumePoint Latest(string runDirectory)
    {
        string checkpoints = Path.Combine(runDirectory, "checkpoints");
        if (!System.IO.Directory.Exists(runDirectory)) throw new ConfigException($"--resume {runDirectory}: no such run directory");
        var found = System.IO.Directory.Exists(checkpoints)
            ? System.IO.Directory.GetDirectories(checkpoints)
                .Where(d => File.Exists(Path.Combine(d, ResumeState.FileName)))
                .Select(d => new ResumePoint(d, ResumeState.Read(d)))
                .OrderByDescending(p => p.State.GlobalStep).ThenBy(p => p.State.Completed ? 0 : 1)
                .FirstOrDefault()
            : null;
        if (found is null)
            throw new ConfigException($"--resume {runDirectory}: no resumable checkpoint in {checkpoints} "
                + "(a run writes one every rlft.job.checkpoint-every online steps and at the end of each offline stage when that is > 0, and on Ctrl-C during an online stage)");
        if (found.State.Completed)
            throw new ConfigException($"--resume {runDirectory}: the run already completed (final checkpoint {found.Directory}); there is nothing to resume");
        found.State.CheckLogs(runDirectory, Path.GetFileName(found.Directory));
        return found;
    }
}

/// <summary>
/// <c>run.json</c> in a run directory: the job file's text, where it was, and the <c>--set</c> overrides, so
/// that <c>rlft run --resume RUN_DIR</c> continues the very job that started the run even if the file changed.
/// </summary>
internal sealed record JobRecord(string JobFile, string JobText, string[] Overrides)
{
    public const string FileName = "run.json";
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static JobRecord Of(string jobFile, IReadOnlyList<string> overrides) =>
        new(Path.GetFullPath(jobFile), File.ReadAllText(jobFile), overrides.ToArray());

    public JobSpec Load() => JobSpec.LoadText(JobText, JobFile, Overrides);

    /// <summary>Writes run.json once (a resumed run keeps the original's).</summary>
    public void WriteTo(string runDirectory)
    {
        string path = Path.Combine(runDirectory, FileName);
        System.IO.Directory.CreateDirectory(runDirectory);
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(this, Json));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public static JobRecord Read(string runDirectory)
    {
        string path = Path.Combine(runDirectory, FileName);
        if (!File.Exists(path)) throw new ConfigException($"--resume {runDirectory}: no {FileName} there (is it a run directory written by rlft run?)");
        try { return JsonSerializer.Deserialize<JobRecord>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty"); }
        catch (JsonException e) { throw new ConfigException($"{path}: not a job record ({e.Message})"); }
    }
}
