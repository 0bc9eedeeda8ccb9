using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Compute.Federated;

/// <summary>
/// A client node's own training data (<c>rlft node --roles client --data PATH</c>), never named in the job and never
/// sent: a JSONL file that every federated stage of the job trains on (SFT records for sft stages, preference pairs for
/// dpo and reward-model stages), or a directory holding <c>sft.jsonl</c> and/or <c>preferences.jsonl</c>, each for the stages of its kind.
/// <see cref="Check"/> reads everything the job's federated stages will train on before the node joins anything.
/// </summary>
internal sealed class ClientData
{
    public const string SftFile = "sft.jsonl", PreferencesFile = "preferences.jsonl";

    public string Path { get; }

    ClientData(string path) => Path = path;

    /// <summary>The file a stage of <paramref name="stage"/>'s kind trains on.</summary>
    public string FileFor(StageSpec stage) =>
        Directory.Exists(Path) ? System.IO.Path.Combine(Path, stage.Kind == StageKind.Sft ? SftFile : PreferencesFile) : Path;

    /// <summary>The data at <paramref name="path"/>, checked against every federated stage of <paramref name="job"/>; one-line problems otherwise.</summary>
    public static ClientData Check(string? path, JobSpec job)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new ConfigException($"--data: a client node trains on its own data: rlft node --roles client --data PATH (a JSONL file, or a directory with {SftFile} and {PreferencesFile})");
        var stages = job.Stages.Where(s => s.Federated is not null).ToList();
        if (stages.Count == 0)
            throw new ConfigException("--roles client: the job has no federated stage (a stage with a federated { … } section); a client node would have nothing to do");
        if (!File.Exists(path) && !Directory.Exists(path)) throw new ConfigException($"--data {path}: no such file or directory");
        var data = new ClientData(System.IO.Path.GetFullPath(path));
        foreach (var stage in stages)
        {
            string file = data.FileFor(stage);
            if (!File.Exists(file))
                throw new ConfigException($"--data {path}: no {System.IO.Path.GetFileName(file)} for federated stage {stage.Index} ({stage.Kind}) in this directory");
            int count;
            try
            {
                count = stage.Kind == StageKind.Sft ? DatasetFormats.ReadSft(file).Count : DatasetFormats.ReadPreferences(file).Count;
                if (stage.Kind is not (StageKind.Sft or StageKind.Dpo or StageKind.RewardModel))
                    throw new ConfigException($"rlft.job.stages[{stage.Index}].federated: client nodes train sft, reward-model and dpo stages, not {stage.Kind}");
            }
            catch (DatasetException e) { throw new ConfigException($"--data: {e.Message}"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ConfigException($"--data {file}: cannot be read: {e.Message}"); }
            if (count == 0) throw new ConfigException($"--data {file}: no records");
        }
        return data;
    }
}
