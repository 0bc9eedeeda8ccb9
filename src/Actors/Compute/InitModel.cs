using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Actors.Jobs;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using Rlft.Rollout.Tasks;

namespace Rlft.Actors.Compute;

/// <summary>
/// The model a job without <c>model.path</c> starts from: a preset written by <see cref="ModelPresets.Write"/> into a
/// directory (the run's <c>init-model</c> on the learner, a client node's work directory under federated training) and
/// reused by later runs while it is the same model. What makes it the same — architecture, preset, seed, chat template
/// and RLFT's version — is recorded beside the weights (<see cref="IdentityFile"/>); a directory written for anything
/// else (another preset under the same job name, a client node that ran another job on the same port) is replaced, not
/// loaded. A directory is written whole under a temporary name and then renamed into place, so a process killed while
/// writing leaves nothing that a later one would take for a model.
/// </summary>
internal static class InitModel
{
    public const string IdentityFile = "rlft-init-model.json";

    /// <summary>The preset model of <paramref name="model"/> in <paramref name="dir"/>, written there unless it already is.</summary>
    public static string Ensure(string dir, ModelSpec model, int seed)
    {
        if (Existing(dir, model, seed) is not null) return dir;
        string identity = Identity(model, seed);
        string full = Path.GetFullPath(dir);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string writing = Path.Combine(parent, $".{Path.GetFileName(full)}-{Guid.NewGuid():N}");
        try
        {
            ModelPresets.Write(model.Arch, model.Preset, writing, seed, ReviewTask.TokenizerCorpus(seed), chatTemplate: model.ChatTemplate);
            File.WriteAllText(Path.Combine(writing, IdentityFile), identity);
            if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
            Directory.Move(writing, full);
        }
        finally
        {
            if (Directory.Exists(writing)) Directory.Delete(writing, recursive: true);
        }
        return dir;
    }

    /// <summary>
    /// <paramref name="dir"/> when it holds the preset model of <paramref name="model"/> written whole by
    /// <see cref="Ensure"/>; null when it holds none, another, or one of another RLFT version (what reads a run's model
    /// before the job writes it — memory estimate, data lengths — then goes by the preset instead).
    /// </summary>
    public static string? Existing(string dir, ModelSpec model, int seed)
    {
        string marker = Path.Combine(dir, IdentityFile);
        return File.Exists(Path.Combine(dir, Checkpoint.ConfigFile)) && File.Exists(marker) && File.ReadAllText(marker) == Identity(model, seed) ? dir : null;
    }

    /// <summary>What the directory was written for, as the text of <see cref="IdentityFile"/>.</summary>
    internal static string Identity(ModelSpec model, int seed) => new JsonObject
    {
        ["arch"] = model.Arch,
        ["preset"] = model.Preset,
        ["seed"] = seed,
        ["chat_template"] = model.ChatTemplate,
        ["rlft"] = Version,
    }.ToJsonString(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";

    static readonly string Version = typeof(ModelPresets).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(ModelPresets).Assembly.ManifestModule.ModuleVersionId.ToString();
}
