using Rlft.Actors.Jobs;
using Rlft.Policy.Encoders;
using Rlft.Policy.Lora;
using Rlft.Policy.Tokenization;
using TorchSharp;

namespace Rlft.Actors.Compute.Sessions;

/// <summary>
/// The encoder an encoder stage trains, with its tokenizer and (with the stage's <c>lora</c>) its adapters: loaded from
/// <c>encoder.path</c> for the stage's task, or made fresh (<c>encoder.arch</c>, <c>encoder.preset</c>) with a tokenizer
/// trained on the stage's texts; saved to <c>encoders/STAGE-NAME</c> in Hugging Face layout, adapters merged (and, for a
/// model from encoder.path, kept beside it in PEFT layout under <c>adapter/</c>).
/// </summary>
internal sealed class EncoderStageModel : IDisposable
{
    public EncoderTextModel Text { get; }
    public LoraAdapters? Adapters { get; }
    readonly string _tokenizerDir;
    readonly string? _initDir;
    readonly string? _basePath;

    EncoderStageModel(EncoderTextModel text, LoraAdapters? adapters, string tokenizerDir, string? initDir, string? basePath) =>
        (Text, Adapters, _tokenizerDir, _initDir, _basePath) = (text, adapters, tokenizerDir, initDir, basePath);

    /// <summary>Opens the stage's encoder with the head of <paramref name="task"/>; <paramref name="corpus"/> is read only for a fresh model.</summary>
    public static EncoderStageModel Open(OfflineRun run, EncoderTask task, IReadOnlyList<string> labels, ProblemType? problem, Func<string> corpus)
    {
        var (job, stage, device) = (run.Job, run.Stage, run.Engine.Device);
        var spec = stage.Encoder!;
        long seed = job.Seed + 1000L * (stage.Index + 1);
        EncoderModel model;
        string tokenizerDir;
        string? initDir = null;
        if (spec.Path is { } path)
        {
            model = EncoderCheckpoint.LoadForTask(path, task, labels, problem, seed, out _, device);
            tokenizerDir = path;
        }
        else
        {
            // A fresh model is made beside the stage's output and removed once the trained one is written.
            initDir = tokenizerDir = EncoderStageSpec.OutputDirectory(job, stage) + ".init";
            if (Directory.Exists(initDir)) Directory.Delete(initDir, true);
            model = EncoderPresets.InitModel(spec.Arch, spec.Preset, initDir, seed, corpus(), spec.VocabSize, task, labels, problem);
            if (device.type != DeviceType.CPU) model.MoveTo(device);
        }
        try
        {
            var text = new EncoderTextModel(model, EncoderTokenizer.Load(tokenizerDir), spec.MaxLength);
            var adapters = spec.Lora is { } lora ? LoraAdapters.Apply(model, lora, seed) : null;
            return new EncoderStageModel(text, adapters, tokenizerDir, initDir, spec.Path);
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>The model's parameters (adapters not counted) and those that train (all of them, or the adapters and the head).</summary>
    public Dictionary<string, double> Sizes() => new()
    {
        ["encoder/parameters"] = Text.Model.parameters().Sum(p => p.numel()) - (Adapters?.Parameters().Sum(p => p.numel()) ?? 0),
        ["encoder/trainable_parameters"] = Text.Model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()),
    };

    /// <summary>Writes the trained model (adapters merged into it) and, with LoRA, the adapters in PEFT layout under adapter/.</summary>
    public string Save(OfflineRun run)
    {
        string dir = EncoderStageSpec.OutputDirectory(run.Job, run.Stage);
        string tmp = dir + ".saving";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        if (Adapters is not null)
        {
            // The adapters apply to encoder.path; a fresh model's random base is not kept, so its adapters are only merged.
            if (_basePath is not null) Adapters.Save(Path.Combine(tmp, "adapter"), baseModel: Path.GetFullPath(_basePath));
            Adapters.Merge();
        }
        EncoderCheckpoint.Save(Text.Model, tmp, _tokenizerDir);
        // Replaced whole: a reader never sees half a model.
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        Directory.Move(tmp, dir);
        if (_initDir is not null && Directory.Exists(_initDir)) Directory.Delete(_initDir, true);
        return dir;
    }

    public void Dispose() => Text.Dispose();
}
