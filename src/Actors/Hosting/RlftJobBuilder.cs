using System.Text;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Reward;
using Rlft.Reward.Sources;

namespace Rlft.Hosting;

/// <summary>
/// Builds a job in code, or starts from a job file's text and changes it. The builder writes HOCON and
/// <see cref="Build"/> reads it with the job file reader and checks it with the job validator, so a code-built job is
/// the <see cref="JobSpec"/> its job file would be, refused with the same one-line errors (each naming its key path,
/// e.g. <c>rlft.job.stages[0].steps</c>) before anything loads.
/// </summary>
public sealed class RlftJobBuilder
{
    readonly string? _baseText;
    readonly string _path;
    readonly string? _resumeRunDirectory;
    readonly IReadOnlyList<string> _overrides;
    readonly List<KeyValuePair<string, object>> _keys = [];
    readonly List<RlftStage> _stages = [];
    readonly List<string> _around = [];
    readonly RewardFunctionRegistry _functions = TorchRewardEngine.Functions();

    internal RlftJobBuilder(string? name, string? baseText, string path, string? resumeRunDirectory = null, IReadOnlyList<string>? overrides = null)
    {
        (_baseText, _path, _resumeRunDirectory, _overrides) = (baseText, Path.GetFullPath(path), resumeRunDirectory, overrides ?? []);
        if (name is not null) Set("name", name);
    }

    public RlftJobBuilder Seed(int seed) => Set("seed", seed);
    /// <summary><c>auto</c>, <c>cpu</c> or <c>cuda</c>.</summary>
    public RlftJobBuilder Device(string device) => Set("device", device);
    /// <summary>Where the run directory (<c>OUTPUT_DIR/NAME</c>) is written; default <c>runs</c>.</summary>
    public RlftJobBuilder OutputDir(string directory) => Set("output-dir", directory);
    /// <summary>A freshly initialised model: <paramref name="arch"/> gpt2, llama or qwen2; <paramref name="preset"/> tiny, small, ….</summary>
    public RlftJobBuilder InitModel(string arch, string preset) => Set("model.arch", arch).Set("model.preset", preset);
    /// <summary>A checkpoint directory in Hugging Face layout.</summary>
    public RlftJobBuilder ModelPath(string directory) => Set("model.path", directory);

    /// <summary>Any job key below <c>rlft.job</c>, as a HOCON path: <c>Set("max-policy-lag", 0)</c>, <c>Set("lora.rank", 8)</c>.</summary>
    public RlftJobBuilder Set(string key, object value)
    {
        NotResuming(nameof(Set));
        HoconValues.CheckKey(key);
        _keys.Add(new(key, value));
        return this;
    }

    /// <summary>Appends a stage. A job from <see cref="RlftJob.FromHocon"/> that is given stages here runs these instead of its own.</summary>
    public RlftJobBuilder Stage(RlftStage stage)
    {
        NotResuming(nameof(Stage));
        _stages.Add(stage);
        return this;
    }

    /// <summary>HOCON beside <c>rlft.job</c>: an <c>akka { … }</c> or <c>rlft.feedback { … }</c> section.</summary>
    public RlftJobBuilder Hocon(string text)
    {
        NotResuming(nameof(Hocon));
        _around.Add(text);
        return this;
    }

    /// <summary>
    /// A reward function a stage's component can name (<see cref="RlftStage.Reward"/>, or <c>source = function,
    /// function = NAME</c> in HOCON). It is called on the reward role's thread with one sample at a time; a NaN or
    /// infinite score, or an exception, drops that sample as any failing source does.
    /// </summary>
    public RlftJobBuilder RewardFunction(string name, Func<RewardSample, double> function)
    {
        _functions.Register(name, function);
        return this;
    }

    /// <summary>An asynchronous reward function (one that awaits a service or a file): awaited for one sample at a time.</summary>
    public RlftJobBuilder RewardFunction(string name, Func<RewardSample, CancellationToken, Task<double>> function)
    {
        _functions.Register(name, function);
        return this;
    }

    /// <summary>The job as HOCON, code datasets named by the files they are written to when the job is built.</summary>
    public string ToHocon() => Render((d, label) => d.Reference(Path.Combine("<run directory>", "data", "code"), label));

    /// <summary>
    /// Reads and checks the job (every problem at once, in one <see cref="ConfigException"/>), writes its code datasets
    /// into the run directory, and returns it ready to run. Nothing is loaded or started.
    /// </summary>
    public RlftJob Build()
    {
        if (_resumeRunDirectory is { } runDir) return BuildResumed(runDir);
        var datasets = _stages.SelectMany((s, i) => s.Datasets(i)).ToList();
        string text;
        if (datasets.Any(d => d.Data.FromCode))
        {
            // Code datasets live in the run directory, which the job's own keys name: read those first (no dataset is
            // written for a job whose keys do not even read), then write the records where the job will find them.
            var read = JobSpec.LoadText(ToHocon(), _path, _overrides);
            string codeData = Path.Combine(Path.GetFullPath(read.RunDirectory), "data", "code");
            text = Render((d, label) => d.Reference(codeData, label));
            foreach (var (data, label) in datasets) data.Write(codeData, label);
        }
        else text = Render((d, label) => d.Reference("", label));
        var spec = JobSpec.LoadTextChecked(text, _path, _overrides, relocate: j => j with { RewardFunctions = _functions });
        return new RlftJob(spec, new JobRecord(_path, text, [.. _overrides]), null);
    }

    RlftJob BuildResumed(string runDirectory)
    {
        var record = JobRecord.Read(runDirectory);
        string runDir = Path.GetFullPath(runDirectory).TrimEnd(Path.DirectorySeparatorChar);
        var spec = JobSpec.LoadTextChecked(record.JobText, record.JobFile, record.Overrides,
            relocate: j => j with { OutputRoot = Path.GetDirectoryName(runDir)!, RewardFunctions = _functions });
        if (Path.GetFileName(runDir) != spec.Name)
            throw new ConfigException($"resume {runDirectory}: the run directory's name is not the job's name '{spec.Name}'");
        var point = ResumePoint.Latest(runDir);
        if (point.State.Stage >= spec.Stages.Count)
            throw new ConfigException($"resume {runDirectory}: {Path.GetFileName(point.Directory)} continues stage {point.State.Stage}, but the job has {spec.Stages.Count} stages");
        return new RlftJob(spec, record, point);
    }

    string Render(Func<RlftData, string, string> data)
    {
        var text = new StringBuilder();
        if (_baseText is not null) text.Append(_baseText).Append('\n');
        foreach (var section in _around) text.Append(section).Append('\n');
        text.Append("rlft.job {\n");
        HoconValues.AppendKeys(text, _keys, "  ");
        if (_stages.Count > 0)
        {
            text.Append("  stages = [\n");
            for (int i = 0; i < _stages.Count; i++) _stages[i].AppendTo(text, data, i);
            text.Append("  ]\n");
        }
        return text.Append("}\n").ToString();
    }

    void NotResuming(string what)
    {
        if (_resumeRunDirectory is not null)
            throw new InvalidOperationException($"{what}: a resumed job is the job its run started with (only reward functions are given again)");
    }
}
